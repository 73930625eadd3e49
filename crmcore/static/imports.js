// Import wizard, step 3: follow a queued or running import by polling its status; reload the page when
// the state changes (a worker took it, it ended) to show what comes next.
(function () {
  "use strict";
  var box = document.getElementById("import-running");
  if (!box) return;
  var bar = document.getElementById("import-progress");
  var done = document.getElementById("import-done");
  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
      .then(function (status) {
        if (status.state !== box.dataset.state) { window.location.reload(); return; }
        bar.value = status.percent;
        bar.textContent = status.percent + " %";
        done.textContent = status.done;
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
