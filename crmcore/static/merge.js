/* Merge screen: when another original is chosen, every field the user did not pick by hand takes the
 * default for that original (its value, else the first one filled in), as the server would choose. */
(function () {
  "use strict";
  var form = document.getElementById("merge-form");
  if (!form) { return; }
  var touched = {};
  form.addEventListener("change", function (event) {
    var input = event.target;
    if (!input || input.type !== "radio") { return; }
    if (input.name === "original_id") {
      Array.prototype.forEach.call(form.querySelectorAll("tr[data-defaults]"), function (row) {
        var field = row.getAttribute("data-field");
        if (touched[field]) { return; }
        var defaults = {};
        try { defaults = JSON.parse(row.getAttribute("data-defaults") || "{}"); } catch (e) { return; }
        var winner = defaults[input.value];
        Array.prototype.forEach.call(row.querySelectorAll('input[type="radio"]'), function (radio) {
          radio.checked = String(radio.value) === String(winner);
        });
      });
    }
  });
  // A click counts as a choice even on the value already checked (no change event then).
  form.addEventListener("click", function (event) {
    var input = event.target;
    if (input && input.type === "radio" && input.name.indexOf("field.") === 0) {
      touched[input.name.slice("field.".length)] = true;
    }
  });
})();
