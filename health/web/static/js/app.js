// The dashboard's shell: who is logged in, the navigation, and one view at a time chosen by
// the location's hash (#/patient, #/practitioner, #/dao, #/network, #/login).

import * as api from "./api.js";
import { h, replace } from "./dom.js";
import * as dao from "./views/dao.js";
import * as login from "./views/login.js";
import * as network from "./views/network.js";
import * as patient from "./views/patient.js";
import * as practitioner from "./views/practitioner.js";

const VIEWS = { login, patient, practitioner, dao, network };
const TITLES = { patient: "My health", practitioner: "Patients", dao: "DAO", network: "Network" };
/** The views each role sees, its home first. */
const ROLE_VIEWS = {
  patient: ["patient", "dao", "network"],
  practitioner: ["practitioner", "dao", "network"],
  institution: ["dao", "network"],
  auditor: ["dao", "network"],
};
const PUBLIC_VIEWS = ["network"];

const state = { me: null, stop: null, rendering: 0 };

function viewsOf(me) {
  return me ? ROLE_VIEWS[me.role] || ["network"] : PUBLIC_VIEWS;
}

function homeOf(me) {
  return me ? viewsOf(me)[0] : "login";
}

/** Show a short message at the bottom of the page (`kind`: ok, error). */
export function toast(message, kind = "ok") {
  const box = document.getElementById("toast");
  const item = h("div", { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  box.appendChild(item);
  setTimeout(() => item.remove(), kind === "error" ? 9000 : 5000);
  while (box.children.length > 4) box.firstChild.remove();
}

function renderHeader() {
  const nav = document.getElementById("nav");
  const current = location.hash.replace(/^#\//, "") || homeOf(state.me);
  replace(
    nav,
    viewsOf(state.me).map((name) =>
      h("a", { href: `#/${name}`, class: name === current ? "active" : "", "data-view": name }, TITLES[name]),
    ),
  );
  const who = document.getElementById("who");
  if (!state.me) {
    replace(who, current === "login" ? "" : h("a", { href: "#/login", class: "button small" }, "Log in"));
    return;
  }
  replace(
    who,
    h("span", { class: "who-name", "data-role": state.me.role }, state.me.name || state.me.label || "me"),
    h("span", { class: `badge badge-${state.me.role}` }, state.me.role),
    h("button", { class: "small secondary", id: "logout", onclick: onLogOut }, "Log out"),
  );
}

async function onLogOut() {
  try {
    await api.logOut();
  } catch (error) {
    toast(`Log-out: ${error.message}`, "error");
  }
  state.me = null;
  await go("login");
}

/** Show view `name`: through the hash (its change routes) or, when it is already there,
 * by routing again. */
async function go(name) {
  if (location.hash === `#/${name}`) await route();
  else location.hash = `#/${name}`;
}

/** The session document with `id` (the identity's id) and `role`. */
function personOf(document) {
  if (!document) return null;
  return { ...document, id: document.id || document.identity_id, label: document.identity && document.identity.label };
}

/** Called by the log-in view once a session is open. */
export async function loggedIn() {
  state.me = personOf(await api.me());
  await go(homeOf(state.me));
}

async function route() {
  const ticket = ++state.rendering;
  if (state.stop) {
    state.stop();
    state.stop = null;
  }
  let name = location.hash.replace(/^#\//, "").split("?")[0];
  if (name !== "login" && !viewsOf(state.me).includes(name)) name = homeOf(state.me);
  if (name === "login" && state.me) name = homeOf(state.me);
  if (location.hash !== `#/${name}`) history.replaceState(null, "", `#/${name}`);
  renderHeader();
  const main = document.getElementById("main");
  replace(main, h("p", { class: "loading" }, "Loading…"));
  // Each rendering fills its own container, shown only while it is the current one: a
  // slower, superseded rendering never replaces the page (its refresh loops are stopped).
  const container = h("div", { class: "view" });
  const context = { me: state.me, toast, loggedIn, isCurrent: () => ticket === state.rendering };
  try {
    const stop = await VIEWS[name].render(container, context);
    if (ticket !== state.rendering) {
      if (stop) stop();
      return;
    }
    state.stop = stop || null;
    main.dataset.view = name;
    replace(main, container);
  } catch (error) {
    if (ticket !== state.rendering) return;
    if (error instanceof api.ApiError && error.status === 401) {
      state.me = null;
      await go("login");
      return;
    }
    replace(main, h("p", { class: "error" }, `This view could not be shown: ${error.message}`));
  }
}

async function start() {
  try {
    state.me = personOf(await api.me());
  } catch (error) {
    state.me = null;
    toast(`The node does not answer: ${error.message}`, "error");
  }
  window.addEventListener("hashchange", route);
  await route();
}

start();
