// Log-in: the node unlocks the user's keystore (kept in the node operator's keystore
// directory) with the passphrase; decryption then happens on this node, for this session.

import * as api from "../api.js";
import { h, replace } from "../dom.js";

export async function render(main, context) {
  const error = h("p", { class: "error", id: "login-error", hidden: true });
  const keystore = h("input", {
    id: "keystore",
    name: "keystore",
    autocomplete: "username",
    required: true,
    placeholder: "e.g. patient-0",
    maxlength: 64,
  });
  const passphrase = h("input", {
    id: "passphrase",
    name: "passphrase",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const submit = h("button", { type: "submit", id: "login-submit" }, "Unlock");
  const form = h(
    "form",
    { class: "login", id: "login-form" },
    h("h1", {}, "Log in"),
    h("p", { class: "hint" },
      "Your keystore lives on your own node; the passphrase unlocks it there and your records are decrypted there, for this session only."),
    h("label", { for: "keystore" }, "Keystore"),
    keystore,
    h("label", { for: "passphrase" }, "Passphrase"),
    passphrase,
    submit,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    submit.textContent = "Unlocking…";
    error.hidden = true;
    try {
      await api.logIn(keystore.value.trim(), passphrase.value);
      passphrase.value = "";
      await context.loggedIn();
    } catch (failure) {
      error.textContent = failure.message;
      error.hidden = false;
      submit.disabled = false;
      submit.textContent = "Unlock";
    }
  });
  replace(main, h("div", { class: "login-page" }, form));
  requestAnimationFrame(() => keystore.focus());
}
