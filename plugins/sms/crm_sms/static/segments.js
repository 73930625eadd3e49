/* SMS segment counter for the compose box: the same rules as crm_sms/segments.py.
 * Usage: <textarea data-sms-counter="ID of the element showing the count">. */
(function (root) {
  "use strict";
  // GSM 03.38 default alphabet (escape 0x1B left out) and its extension table (two septets each).
  var BASIC = "@\u00a3$\u00a5\u00e8\u00e9\u00f9\u00ec\u00f2\u00c7\n\u00d8\u00f8\r\u00c5\u00e5\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e\u00c6\u00e6\u00df\u00c9 !\"#\u00a4%&'()*+,-./0123456789:;<=>?\u00a1ABCDEFGHIJKLMNOPQRSTUVWXYZ\u00c4\u00d6\u00d1\u00dc\u00a7\u00bfabcdefghijklmnopqrstuvwxyz\u00e4\u00f6\u00f1\u00fc\u00e0";
  var EXTENDED = "\f^{}\\[~]|\u20ac";
  var LIMITS = { "GSM-7": [160, 153], "UCS-2": [70, 67] };

  function costs(text) {
    var chars = Array.from(text), gsm = [], ok = true;
    for (var i = 0; i < chars.length; i++) {
      if (BASIC.indexOf(chars[i]) >= 0) gsm.push(1);
      else if (EXTENDED.indexOf(chars[i]) >= 0) gsm.push(2);
      else { ok = false; break; }
    }
    if (ok) return ["GSM-7", chars, gsm];
    return ["UCS-2", chars, chars.map(function (ch) { return ch.length; })];
  }

  function countSegments(text) {
    var r = costs(text || ""), encoding = r[0], chars = r[1], cost = r[2];
    var single = LIMITS[encoding][0], multi = LIMITS[encoding][1];
    var units = cost.reduce(function (a, b) { return a + b; }, 0);
    var result = { encoding: encoding, characters: chars.length, units: units };
    if (units === 0) { result.segments = 0; result.per_segment = single; result.remaining = single; return result; }
    if (units <= single) { result.segments = 1; result.per_segment = single; result.remaining = single - units; return result; }
    var segments = 1, used = 0;
    cost.forEach(function (c) { if (used + c > multi) { segments += 1; used = 0; } used += c; });
    result.segments = segments; result.per_segment = multi; result.remaining = multi - used;
    return result;
  }

  function attach(doc) {
    var boxes = doc.querySelectorAll("textarea[data-sms-counter]");
    Array.prototype.forEach.call(boxes, function (box) {
      var out = doc.getElementById(box.getAttribute("data-sms-counter"));
      if (!out) return;
      var update = function () {
        var s = countSegments(box.value);
        out.textContent = s.characters + " / " + s.segments + " SMS (" + s.encoding + ", " + s.remaining + ")";
        out.setAttribute("data-segments", String(s.segments));
      };
      box.addEventListener("input", update);
      update();
    });
  }

  root.crmSms = { countSegments: countSegments };
  if (typeof module !== "undefined" && module.exports) module.exports = root.crmSms;
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", function () { attach(document); });
    else attach(document);
  }
})(typeof window !== "undefined" ? window : this);
