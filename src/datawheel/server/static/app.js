// datawheel web UI: sign-in, votes and model actions post JSON to the /api routes.
// The session cookie is HttpOnly and SameSite=strict; nothing here reads or stores it.
// Text from the server is set with textContent, never as HTML.
"use strict";

async function postJSON(url, body, method = "POST") {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  let data = {};
  try {
    data = await response.json();
  } catch (e) {
    data = { error: `${response.status} ${response.statusText}` };
  }
  if (!response.ok) throw new Error(data.error || `request failed (${response.status})`);
  return data;
}

function signIn(form) {
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const f = new FormData(form);
    const key = (f.get("key") || "").trim();
    const body = key ? { key } : { name: f.get("name"), password: f.get("password") };
    try {
      await postJSON("/api/session", body);
      window.location.assign(form.dataset.next || "/ask");
    } catch (e) {
      error.textContent = e.message;
    }
  });
}

function feedback(form) {
  const status = document.getElementById("feedback-status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const vote = event.submitter ? event.submitter.value : "up";
    const f = new FormData(form);
    const body = {
      interaction_id: form.dataset.interaction,
      vote,
      comment: (f.get("comment") || "").trim() || null,
      correction: (f.get("correction") || "").trim() || null,
      failure: vote === "down" && f.get("not_in_sources") ? "not_in_sources" : null,
    };
    status.className = "";
    try {
      await postJSON("/api/feedback", body);
      form.querySelectorAll("button[name=vote]").forEach((b) => {
        b.classList.toggle("chosen", b.value === vote);
      });
      status.textContent = `Thanks: your ${vote === "up" ? "👍" : "👎"} is recorded.`;
    } catch (e) {
      status.className = "error";
      status.textContent = e.message;
    }
  });
}

function actions(buttons) {
  const status = document.getElementById("action-status");
  buttons.forEach((button) => {
    button.addEventListener("click", async () => {
      buttons.forEach((b) => (b.disabled = true));
      status.className = "status";
      status.textContent = "working…";
      try {
        const result = await postJSON(button.dataset.url, JSON.parse(button.dataset.body));
        status.textContent = result.reason || `done: ${JSON.stringify(result)}`;
        window.setTimeout(() => window.location.reload(), 600);
      } catch (e) {
        status.className = "status error";
        status.textContent = e.message;
        buttons.forEach((b) => (b.disabled = false));
      }
    });
  });
}

// Dashboard charts: each <div data-figure> holds its plotly figure as JSON (no inline
// scripts, so the Content-Security-Policy can allow scripts from this site only).
function charts() {
  if (!window.Plotly) return;
  document.querySelectorAll("div[data-figure]").forEach((el) => {
    const spec = JSON.parse(el.dataset.figure);
    window.Plotly.newPlot(el, spec.figure.data, spec.figure.layout, spec.config);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  charts();
  const login = document.getElementById("login");
  if (login) signIn(login);
  const vote = document.getElementById("feedback");
  if (vote) feedback(vote);
  const buttons = document.querySelectorAll("button.act");
  if (buttons.length) actions(Array.from(buttons));
});

// Charts drawn before the grid settles can be wider than their cell: fit them once the
// page has laid out.
window.addEventListener("load", () => {
  if (!window.Plotly) return;
  document.querySelectorAll(".js-plotly-plot").forEach((el) => window.Plotly.Plots.resize(el));
});
