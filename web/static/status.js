// Polls the submission's status JSON and updates the page without reloading it.
(function () {
  "use strict";
  var el = document.getElementById("state");
  if (!el || !el.dataset.statusUrl) { return; }
  var finals = { graded: true, failed: true };
  if (finals[el.textContent.trim()]) { return; }
  function showFeedback() {
    fetch(el.dataset.feedbackUrl, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) { document.getElementById("feedback").innerHTML = html; });  // server-escaped
  }
  function poll() {
    fetch(el.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("status " + r.status); }  // 503: the service is briefly away
        return r.json();
      })
      .then(function (s) {
        el.textContent = s.state;
        el.className = "state " + s.state;
        var pending = document.getElementById("pending");
        if (pending) {  // no grader for this queue: say so, instead of only "waiting"
          pending.textContent = s.notice ? s.notice + " This page updates by itself." : pending.dataset.default;
          pending.className = s.notice ? "pending warning" : "pending";
        }
        // Nobody will grade it soon when the notice shows: poll gently until a worker starts.
        if (s.done) { showFeedback(); } else { setTimeout(poll, s.notice ? 5000 : 1000); }
      })
      .catch(function () {
        var pending = document.getElementById("pending");
        if (pending) {
          pending.textContent = "The service is briefly unavailable; this page keeps trying. Your submission is saved.";
          pending.className = "pending warning";
        }
        setTimeout(poll, 3000);
      });
  }
  setTimeout(poll, 500);
})();
