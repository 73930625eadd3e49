/* crmcore pages: small enhancements on top of server-rendered forms (no build step, no dependencies).
 * Every page works without this file; it adds: repeating rows, "copy from main address", kind
 * switching, duplicate warnings, tag and contact autocomplete, mass-selection helpers, tabs, confirms. */
(function () {
  "use strict";

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments, self = this;
      clearTimeout(timer);
      timer = setTimeout(function () { fn.apply(self, args); }, ms);
    };
  }
  function fold(text) {
    return (text || "").normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase().trim();
  }
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    });
  }

  /* -- confirmations: <form data-confirm>, <a data-confirm>, <button data-confirm> ---------------- */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var submitter = event.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (form.id === "mass-form") {
      var option = $("#mass-action option:checked");
      if (option && option.getAttribute("data-confirm")) { message = option.getAttribute("data-confirm"); }
    }
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });
  document.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-confirm]");
    if (link && !window.confirm(link.getAttribute("data-confirm"))) { event.preventDefault(); }
  });

  /* -- selects that submit their form when changed -------------------------------------------- */
  $all("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  /* -- repeating rows (emails, phones, addresses) ---------------------------------------------- */
  document.addEventListener("click", function (event) {
    var add = event.target.closest("[data-add-row]");
    if (add) {
      var group = add.getAttribute("data-add-row");
      var rows = document.getElementById(group + "-rows");
      var template = document.getElementById(group + "-template");
      if (!rows || !template) { return; }
      var index = parseInt(rows.getAttribute("data-next-index") || "0", 10);
      rows.setAttribute("data-next-index", String(index + 1));
      var holder = document.createElement("div");
      holder.innerHTML = template.innerHTML.replace(/__i__/g, String(index));
      var row = holder.firstElementChild;
      if (group === "addresses" && $all(".address-row", rows).some(function (r) { return $(".address-kind", r).value === "main"; })) {
        var kind = $(".address-kind", row);
        if (kind.value === "main") { kind.value = "billing"; }
        updateCopyButton(row);
      }
      rows.appendChild(row);
      var first = $("input:not([type=hidden]), select", row);
      if (first) { first.focus(); }
      return;
    }
    var remove = event.target.closest(".remove-row");
    if (remove) {
      var container = remove.closest(".repeat-row");
      var section = container && container.parentElement;
      if (container) { container.remove(); }
      var next = section && $("input, select, button", section.parentElement);
      if (next) { next.focus(); }
      checkDuplicates();
      return;
    }
    var copy = event.target.closest(".copy-main");
    if (copy) {
      copyMainAddress(copy.closest(".address-row"), copy);
    }
  });

  function updateCopyButton(row) {
    var button = $(".copy-main", row);
    var kind = $(".address-kind", row);
    if (button && kind) { button.hidden = kind.value === "main"; }
  }
  document.addEventListener("change", function (event) {
    if (event.target.classList && event.target.classList.contains("address-kind")) {
      updateCopyButton(event.target.closest(".address-row"));
    }
  });

  function copyMainAddress(row, button) {
    var main = $all(".address-row").filter(function (r) {
      return r !== row && $(".address-kind", r).value === "main";
    })[0];
    var old = row.querySelector(".copy-message");
    if (old) { old.remove(); }
    if (!main) {
      var message = document.createElement("span");
      message.className = "field-error copy-message";
      message.setAttribute("role", "status");
      message.textContent = document.getElementById("addresses-rows").getAttribute("data-no-main") || "No main address to copy.";
      button.insertAdjacentElement("afterend", message);
      return;
    }
    $all("[data-part]", main).forEach(function (source) {
      var target = $('[data-part="' + source.getAttribute("data-part") + '"]', row);
      if (target) { target.value = source.value; }
    });
  }

  /* -- kind switch: person / organization fields ----------------------------------------------- */
  function applyKind(kind) {
    $all("[data-kind]").forEach(function (el) { el.hidden = el.getAttribute("data-kind") !== kind; });
    $all("[data-kinds]").forEach(function (el) {
      el.hidden = el.getAttribute("data-kinds").split(" ").indexOf(kind) === -1;
    });
    checkDuplicates();
  }
  $all('input[name="kind"]').forEach(function (radio) {
    radio.addEventListener("change", function () { if (radio.checked) { applyKind(radio.value); } });
  });

  /* -- duplicate warning while typing a name, email or phone ------------------------------------ */
  var warning = $("#duplicate-warning");
  var contactForm = $("#contact-form");
  var lastQuery = null;

  function currentKind() {
    var checked = $('input[name="kind"]:checked');
    return checked ? checked.value : "person";
  }

  function duplicateParams() {
    var params = new URLSearchParams();
    var kind = currentKind();
    if (kind === "person") {
      var first = ($("#first_name") || {}).value || "";
      var last = ($("#last_name") || {}).value || "";
      if (last.trim().length >= 2) {
        params.set("first_name", first.trim());
        params.set("last_name", last.trim());
      }
    } else {
      var name = ($("#name") || {}).value || "";
      if (name.trim().length >= 2) { params.set("name", name.trim()); }
    }
    var email = $all('[data-duplicate-check="email"]').map(function (i) { return i.value.trim(); })
      .filter(function (v) { return v.indexOf("@") > 0; })[0];
    if (email) { params.set("email", email); }
    var phone = $all('[data-duplicate-check="phone"]').map(function (i) { return i.value.trim(); })
      .filter(function (v) { return v.replace(/\D/g, "").length >= 6; })[0];
    if (phone) { params.set("phone", phone); }
    var current = contactForm.getAttribute("data-contact-id");
    if (current && Array.from(params.keys()).length) { params.set("exclude_id", current); }
    return params;
  }

  var reasonWords = {};
  try { reasonWords = JSON.parse((warning && warning.getAttribute("data-reasons")) || "{}"); } catch (e) { reasonWords = {}; }
  function translateReason(reason) {
    var text = String(reason);
    var best = Object.keys(reasonWords).filter(function (key) { return text.indexOf(key) === 0; })
      .sort(function (a, b) { return b.length - a.length; })[0];
    return best ? reasonWords[best] + text.slice(best.length) : text;
  }

  function showDuplicates(results, params) {
    var exclude = contactForm.getAttribute("data-contact-id");
    var list = (Array.isArray(results) ? results : (results && results.items) || []).filter(function (r) {
      return r && r.contact && String(r.contact.id) !== exclude;
    });
    warning.textContent = "";
    if (!list.length) { warning.hidden = true; return; }
    var byName = (params.has("last_name") || params.has("name")) && list.some(function (r) {
      return (r.reasons || []).some(function (why) { return /name|nom/i.test(String(why)); });
    });
    var title = document.createElement("strong");
    title.textContent = warning.getAttribute(byName ? "data-title-name" : "data-title-other");
    warning.appendChild(title);
    var ul = document.createElement("ul");
    list.slice(0, 5).forEach(function (r) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = "/contacts/" + encodeURIComponent(r.contact.id);
      a.target = "_blank";
      a.rel = "noopener";
      a.textContent = r.contact.display_name + (r.contact.number ? " (" + r.contact.number + ")" : "");
      li.appendChild(a);
      if (r.reasons && r.reasons.length) {
        var why = document.createElement("span");
        why.className = "muted";
        why.textContent = " — " + r.reasons.map(translateReason).join(", ");
        li.appendChild(why);
      }
      ul.appendChild(li);
    });
    warning.appendChild(ul);
    warning.hidden = false;
  }

  var checkDuplicates = debounce(function () {
    if (!warning || !contactForm) { return; }
    var params = duplicateParams();
    var query = params.toString();
    if (query === lastQuery) { return; }
    lastQuery = query;
    if (!query) { warning.hidden = true; return; }
    getJSON(warning.getAttribute("data-url") + "?" + query)
      .then(function (results) { if (query === lastQuery) { showDuplicates(results, params); } })
      .catch(function () { warning.hidden = true; });  // not available (yet): say nothing
  }, 350);

  if (contactForm) {
    contactForm.addEventListener("input", function (event) {
      if (event.target.hasAttribute && event.target.hasAttribute("data-duplicate-check")) { checkDuplicates(); }
    });
  }

  /* -- tags autocomplete: suggestions for the word being typed after the last comma ---------------- */
  $all("[data-tags-autocomplete]").forEach(function (input) {
    var datalist = document.getElementById(input.getAttribute("list"));
    var tags = null;
    function load() {
      if (tags !== null) { return Promise.resolve(tags); }
      tags = [];
      return getJSON("/api/v1/tags").then(function (rows) {
        tags = (rows || []).map(function (t) { return t.name; });
        return tags;
      }).catch(function () { return tags; });
    }
    function suggest() {
      load().then(function (names) {
        var value = input.value;
        var cut = value.lastIndexOf(",");
        var prefix = cut >= 0 ? value.slice(0, cut + 1) + " " : "";
        var term = fold(cut >= 0 ? value.slice(cut + 1) : value);
        var chosen = value.split(",").map(fold);
        datalist.textContent = "";
        names.filter(function (name) {
          var key = fold(name);
          return key.indexOf(term) !== -1 && chosen.indexOf(key) === -1;
        }).slice(0, 20).forEach(function (name) {
          var option = document.createElement("option");
          option.value = prefix + name;
          datalist.appendChild(option);
        });
      });
    }
    input.addEventListener("focus", suggest);
    input.addEventListener("input", debounce(suggest, 150));
  });

  /* -- contact autocomplete (organization, reports to): fills the hidden id ---------------------- */
  $all("[data-autocomplete]").forEach(function (input) {
    var kind = input.getAttribute("data-autocomplete");
    var hidden = document.getElementById(input.getAttribute("data-target"));
    var datalist = document.getElementById(input.getAttribute("list"));
    var lastTerm = null;
    function pick() {
      var match = $all("option", datalist).filter(function (o) { return o.value === input.value; })[0];
      if (match) { hidden.value = match.getAttribute("data-id"); }
      else if (!input.value.trim()) { hidden.value = ""; }
      return match;
    }
    var search = debounce(function () {
      var term = input.value.trim();
      if (term.length < 2 || term === lastTerm) { return; }
      lastTerm = term;
      var url = "/api/v1/contacts?" + new URLSearchParams({ kind: kind, q: term, limit: "10" }).toString();
      getJSON(url).then(function (page) {
        datalist.textContent = "";
        (page.items || []).forEach(function (c) {
          var exclude = contactForm && contactForm.getAttribute("data-contact-id");
          if (String(c.id) === exclude) { return; }
          var option = document.createElement("option");
          option.value = c.display_name;
          option.label = c.number;
          option.setAttribute("data-id", c.id);
          datalist.appendChild(option);
        });
        pick();
      }).catch(function () { /* the server resolves the typed name when saving */ });
    }, 250);
    input.addEventListener("input", function () {
      if (!pick()) { hidden.value = ""; }
      search();
    });
  });

  /* -- list: selection, mass-action parameters, export link ------------------------------------ */
  var massForm = $("#mass-form");
  if (massForm) {
    var selectAll = $("#select-all");
    var count = $("#selected-count");
    var actionSelect = $("#mass-action");
    var exportLink = $("#mass-export");
    var refresh = function () {
      var boxes = $all(".row-select", massForm);
      var ids = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
      if (count) {
        count.textContent = ids.length ? count.getAttribute("data-template").replace("{n}", ids.length) : "";
      }
      if (selectAll) {
        selectAll.checked = ids.length > 0 && ids.length === boxes.length;
        selectAll.indeterminate = ids.length > 0 && ids.length < boxes.length;
      }
      if (exportLink) {
        exportLink.href = exportLink.getAttribute("data-base") + (ids.length ? "&ids=" + ids.join(",") : "");
      }
    };
    var showParams = function () {
      var action = actionSelect ? actionSelect.value : "";
      $all(".mass-param", massForm).forEach(function (span) {
        span.hidden = span.getAttribute("data-for").split(" ").indexOf(action) === -1;
      });
    };
    if (selectAll) {
      selectAll.addEventListener("change", function () {
        $all(".row-select", massForm).forEach(function (b) { b.checked = selectAll.checked; });
        refresh();
      });
    }
    massForm.addEventListener("change", function (event) {
      if (event.target.classList.contains("row-select")) { refresh(); }
      if (event.target === actionSelect) { showParams(); }
    });
    showParams();
    refresh();
  }

  /* -- tabs on the contact page (links work without JavaScript) -------------------------------- */
  var tablist = $("[role=tablist]");
  if (tablist) {
    var tabs = $all("[role=tab]", tablist);
    var select = function (tab, focus) {
      tabs.forEach(function (t) {
        var selected = t === tab;
        t.setAttribute("aria-selected", selected ? "true" : "false");
        t.setAttribute("tabindex", selected ? "0" : "-1");
        var panel = document.getElementById(t.getAttribute("aria-controls"));
        if (panel) { panel.hidden = !selected; }
      });
      if (focus) { tab.focus(); }
      var url = new URL(window.location.href);
      url.searchParams.set("tab", tab.getAttribute("data-tab"));
      window.history.replaceState(null, "", url.pathname + url.search + "#tabs");
    };
    tabs.forEach(function (tab) {
      tab.setAttribute("tabindex", tab.getAttribute("aria-selected") === "true" ? "0" : "-1");
      tab.addEventListener("click", function (event) { event.preventDefault(); select(tab, false); });
      tab.addEventListener("keydown", function (event) {
        var index = tabs.indexOf(tab);
        var next = null;
        if (event.key === "ArrowRight") { next = tabs[(index + 1) % tabs.length]; }
        else if (event.key === "ArrowLeft") { next = tabs[(index - 1 + tabs.length) % tabs.length]; }
        else if (event.key === "Home") { next = tabs[0]; }
        else if (event.key === "End") { next = tabs[tabs.length - 1]; }
        if (next) { event.preventDefault(); select(next, true); }
      });
    });
  }

  /* -- the error summary gets the focus so screen readers announce it ---------------------------- */
  var summary = $("#error-summary");
  if (summary) { summary.focus(); }
})();
