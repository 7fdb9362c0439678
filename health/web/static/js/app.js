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
  location.hash = "#/login";
  await route();
}

/** Called by the log-in view once a session is open. */
export async function loggedIn() {
  state.me = await api.me();
  location.hash = `#/${homeOf(state.me)}`;
  await route();
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
  main.dataset.view = name;
  replace(main, h("p", { class: "loading" }, "Loading…"));
  const context = { me: state.me, toast, loggedIn, isCurrent: () => ticket === state.rendering };
  try {
    const stop = await VIEWS[name].render(main, context);
    if (ticket === state.rendering) state.stop = stop || null;
    else if (stop) stop();
  } catch (error) {
    if (error instanceof api.ApiError && error.status === 401) {
      state.me = null;
      location.hash = "#/login";
      return route();
    }
    replace(main, h("p", { class: "error" }, `This view could not be shown: ${error.message}`));
  }
}

async function start() {
  try {
    state.me = await api.me();
  } catch (error) {
    state.me = null;
    toast(`The node does not answer: ${error.message}`, "error");
  }
  window.addEventListener("hashchange", route);
  await route();
}

start();
