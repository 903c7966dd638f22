// Instructor pages with gradings in flight (after a regrade): poll the status JSON named by #live and,
// whenever it changes, re-fetch this page and swap its #live-body in place (no reload); stop when the
// JSON says nothing is queued or running any more.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !live.dataset.statusUrl) { return; }
  var url = live.dataset.statusUrl;
  var last = null;

  function swap() {
    return fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("page " + r.status); }
        return r.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live-body");
        var here = document.getElementById("live-body");
        if (fresh && here) { here.innerHTML = fresh.innerHTML; }  // the server's own escaped page
        document.dispatchEvent(new CustomEvent("live:updated"));
      });
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("status " + r.status); }  // 503: the service is briefly away
        return r.json();
      })
      .then(function (s) {
        var text = JSON.stringify(s);
        var changed = text !== last;
        last = text;
        return (changed ? swap() : Promise.resolve()).then(function () {
          if (!s.done) { setTimeout(poll, 1500); }
        });
      })
      .catch(function () { setTimeout(poll, 4000); });
  }

  setTimeout(poll, 1000);
})();
