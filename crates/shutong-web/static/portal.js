// 数通 portal: the one script of the portal, served by the platform itself (the content security policy
// allows scripts from this origin only, none inline). Pages work without it; with it, an error that names
// a form field is shown beside that field (and the field marked invalid and focused), not only at the top.
(function () {
  "use strict";
  function fieldFor(name) {
    // The service names fields as its API does: `items`, `valid_to`, `row_filter.conditions[0].item`.
    // A form input carries that name, or lists it in data-error-for; a dotted or indexed name falls back
    // to its base.
    var names = [name, name.replace(/\[.*$/, ""), name.split(".")[0]];
    for (var i = 0; i < names.length; i++) {
      var n = names[i];
      if (!n) continue;
      var all = document.querySelectorAll("main form [name], main form [data-error-for]");
      for (var j = 0; j < all.length; j++) {
        var el = all[j];
        var aliases = (el.getAttribute("data-error-for") || "").split(/\s+/);
        if (el.getAttribute("name") === n || aliases.indexOf(n) >= 0) return el;
      }
    }
    return null;
  }
  function show() {
    var flash = document.querySelector(".flash.error[data-field]");
    if (!flash) return;
    var el = fieldFor(flash.getAttribute("data-field"));
    if (!el) return;
    var note = document.createElement("p");
    note.className = "field-error";
    note.id = "field-error";
    note.setAttribute("data-testid", "field-error");
    note.textContent = flash.textContent;
    // After the control, or after the label that wraps it (check boxes).
    var anchor = el.closest("label") || el;
    if (el.type === "checkbox" || el.type === "radio") anchor = el.closest("fieldset") || anchor;
    anchor.insertAdjacentElement(anchor.tagName === "FIELDSET" ? "beforeend" : "afterend", note);
    el.setAttribute("aria-invalid", "true");
    var described = el.getAttribute("aria-describedby");
    el.setAttribute("aria-describedby", (described ? described + " " : "") + "field-error");
    flash.classList.add("has-field");
    el.focus();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", show);
  else show();
})();
