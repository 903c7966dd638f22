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
      .then(function (r) { return r.json(); })
      .then(function (s) {
        el.textContent = s.state;
        el.className = "state " + s.state;
        if (s.done) { showFeedback(); } else { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 500);
})();
