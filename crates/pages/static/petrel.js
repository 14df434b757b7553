// petrel's pages work without this file; it only saves clicks.
// - A <select data-autosubmit> submits its form when changed.
// - Editing a date of a range form switches its preset to "custom".
// - A [data-copy] button copies the text of the element it names.
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (t.matches && t.matches("select[data-autosubmit]") && t.form) {
      t.form.requestSubmit ? t.form.requestSubmit() : t.form.submit();
    }
    if (t.matches && t.matches("[data-custom] input") && t.form) {
      var sel = t.form.querySelector("select[name=range]");
      if (sel && sel.querySelector("option[value=custom]")) { sel.value = "custom"; }
    }
  });
  document.addEventListener("click", function (e) {
    var b = e.target.closest && e.target.closest("[data-copy]");
    if (!b) { return; }
    var el = document.getElementById(b.getAttribute("data-copy"));
    if (el && navigator.clipboard) {
      navigator.clipboard.writeText(el.textContent).then(function () {
        var old = b.textContent;
        b.textContent = "Copied";
        setTimeout(function () { b.textContent = old; }, 1500);
      });
    }
  });
})();
