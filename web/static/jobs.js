// Polls a background job's JSON and updates its progress page without reloading it; once a roster
// import is done, shows its accounts and skipped rows (built with textContent: nothing is parsed as HTML).
(function () {
  "use strict";
  var box = document.getElementById("job");
  if (!box || !box.dataset.statusUrl || box.dataset.state !== "running") { return; }
  var text = document.getElementById("job-text");
  var bar = document.getElementById("job-progress");
  var status = document.getElementById("job-status");

  function el(tag, content, cls) {
    var e = document.createElement(tag);
    if (content !== undefined && content !== null) { e.textContent = String(content); }
    if (cls) { e.className = cls; }
    return e;
  }

  function table(id, heads, rows) {
    var t = el("table", null, "grid"), head = el("tr"), body = el("tbody"), thead = el("thead");
    t.id = id;
    heads.forEach(function (h) { head.appendChild(el("th", h)); });
    thead.appendChild(head);
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (c) { tr.appendChild(c instanceof Node ? wrap(c) : el("td", c)); });
      body.appendChild(tr);
    });
    t.appendChild(thead);
    t.appendChild(body);
    var scroll = el("div", null, "scroll");
    scroll.appendChild(t);
    return scroll;
  }

  function wrap(node) { var td = el("td"); td.appendChild(node); return td; }

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function showResult(result) {
    var out = document.getElementById("job-result");
    var created = result.created || [], skipped = result.skipped || [];
    var shown = !result.passwords_gone;
    out.textContent = "";
    var h = el("h2", "Created " + plural(created.length, "account"));
    h.id = "created-title";
    out.appendChild(h);
    if (created.length) {
      out.appendChild(el("p", shown
        ? "Hand each student their one-time password; they choose their own at first login. These " +
          "passwords are deleted an hour after the import, or now with the button above."
        : "The one-time passwords are deleted (" + result.passwords_gone + ").", "notice"));
      out.appendChild(table("new-accounts", shown ? ["Username", "Name", "One-time password"] : ["Username", "Name"],
        created.map(function (a) {
          return shown ? [a.username, a.name, el("code", a.password)] : [a.username, a.name];
        })));
      var actions = document.getElementById("job-actions");
      if (actions && shown) { actions.hidden = false; }
    }
    if (skipped.length) {
      out.appendChild(el("h2", "Skipped " + plural(skipped.length, "row")));
      out.appendChild(table("skipped", ["Line", "Username", "Why"], skipped.map(function (s) {
        return [s.line, s.username, s.reason];
      })));
    }
  }

  function show(job) {
    bar.max = Math.max(job.total, 1);
    bar.value = job.done;
    bar.textContent = job.done + " of " + job.total;
    status.className = "job-status " + job.state;
    box.dataset.state = job.state;
    if (job.state === "running") {
      text.textContent = "Making accounts: " + job.done + " of " + job.total + " done. This page updates by itself.";
    } else if (job.state === "done") {
      text.textContent = "Done: " + job.total + " of " + job.total + ".";
      if (job.result) { showResult(job.result); }
    } else {
      text.textContent = "The import did not finish: " + job.message;
    }
  }

  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("status " + r.status); }  // 503: the service is briefly away
        return r.json();
      })
      .then(function (job) {
        show(job);
        if (!job.finished) { setTimeout(poll, 1000); }
      })
      .catch(function () {
        text.textContent = "The service is briefly unavailable; this page keeps trying. The import goes on.";
        setTimeout(poll, 3000);
      });
  }
  setTimeout(poll, 500);
})();
