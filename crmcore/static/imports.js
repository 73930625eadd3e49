// Import wizard, step 3: follow a running import by polling its status, then show the report.
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
        if (status.state !== "running") { window.location.reload(); return; }
        bar.value = status.percent;
        bar.textContent = status.percent + " %";
        done.textContent = status.done;
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
