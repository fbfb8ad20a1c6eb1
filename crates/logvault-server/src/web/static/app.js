// logvault's Logs page: small progressive enhancements; every page works without them.
// Local times on hover, the custom-range fields shown only when chosen, and live tail.
"use strict";

function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at)) {
      el.title = "Your time: " + at.toLocaleString();
    }
  }
}

function customRange() {
  const select = document.querySelector("select[data-range]");
  if (!select) return;
  const form = select.form;
  form.classList.add("js");
  const fields = form.querySelectorAll(".custom");
  const sync = () => fields.forEach((f) => { f.hidden = select.value !== "custom"; });
  select.addEventListener("change", sync);
  sync();
}

function liveTail() {
  const button = document.getElementById("tail-toggle");
  if (!button || !window.EventSource) return;
  button.hidden = false;
  const status = document.getElementById("tail-status");
  let source = null;
  let held = [];
  let after = button.dataset.after;

  const body = () => {
    let rows = document.getElementById("rows");
    if (!rows) {
      // The page was empty: build the table the first rows go into.
      const empty = document.getElementById("empty");
      const kind = location.pathname.indexOf("threat") >= 0 ? "threat" : "audit";
      const heads = kind === "audit"
        ? ["Time (UTC)", "Account", "Action", "Outcome", "Actor", "IP"]
        : ["Time (UTC)", "Account", "Error type", "Message", "Version", "Environment"];
      if (button.dataset.accounts !== "true") heads.splice(1, 1);
      const wrap = document.createElement("div");
      wrap.className = "table-wrap";
      const table = document.createElement("table");
      table.className = "events";
      table.id = "events";
      const head = table.createTHead().insertRow();
      for (const text of heads) {
        const th = document.createElement("th");
        th.scope = "col";
        th.textContent = text;
        head.appendChild(th);
      }
      rows = document.createElement("tbody");
      rows.id = "rows";
      table.appendChild(rows);
      wrap.appendChild(table);
      if (empty) empty.replaceWith(wrap);
      else status.after(wrap);
    }
    return rows;
  };

  // Rows arrive oldest first; each goes on top, so the newest ends up first.
  const show = (html) => {
    const template = document.createElement("template");
    template.innerHTML = html;
    const rows = body();
    const fresh = Array.from(template.content.querySelectorAll("tr"));
    for (const row of fresh) {
      row.classList.add("new");
      rows.insertBefore(row, rows.firstChild);
    }
    localTimes(rows);
  };

  const scrolledAway = () => window.scrollY > 200;

  const report = () => {
    status.hidden = false;
    status.textContent = "";
    if (held.length > 0) {
      status.append("Live tail paused while you scroll: " + held.length + " new batch(es) waiting.");
      const resume = document.createElement("button");
      resume.type = "button";
      resume.className = "button quiet";
      resume.textContent = "Show them";
      resume.addEventListener("click", flush);
      status.append(resume);
    } else {
      status.append("Live tail is on: new events appear at the top.");
    }
  };

  const flush = () => {
    for (const html of held) show(html);
    held = [];
    report();
    window.scrollTo({ top: 0 });
  };

  window.addEventListener("scroll", () => {
    if (source && !scrolledAway() && held.length > 0) flush();
  });

  const start = () => {
    const url = button.dataset.tail + (button.dataset.tail.indexOf("?") >= 0 ? "&" : "?") + "after=" + encodeURIComponent(after);
    source = new EventSource(url);
    source.addEventListener("rows", (event) => {
      after = event.lastEventId || after;
      if (scrolledAway()) held.push(event.data);
      else show(event.data);
      report();
    });
    source.onerror = () => {
      status.hidden = false;
      status.textContent = "Live tail lost its connection; retrying…";
    };
    button.setAttribute("aria-pressed", "true");
    button.textContent = "Stop live tail";
    report();
  };

  const stop = () => {
    if (source) source.close();
    source = null;
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Live tail";
    status.hidden = true;
  };

  button.addEventListener("click", () => (source ? stop() : start()));
}

// Leave empty fields out of the URL so a shared view reads cleanly.
function compactForms() {
  for (const form of document.querySelectorAll("form.filters")) {
    form.addEventListener("submit", () => {
      for (const field of form.elements) {
        if (field.name && field.value === "") field.disabled = true;
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  compactForms();
  customRange();
  liveTail();
});
