// monitor's small progressive enhancement: every page works without it.
// 1. <time datetime="..."> shows the viewer's local time.
// 2. Buttons with data-confirm ask first.
// 3. Keyboard: j/k move between stories on the Today page.
(function () {
  "use strict";
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) { return; }
      el.title = el.textContent;
      el.textContent = when.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"
      });
    });
  }
  function confirms(root) {
    root.querySelectorAll("[data-confirm]").forEach(function (el) {
      el.addEventListener("click", function (event) {
        if (!window.confirm(el.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }
  function keys() {
    var rows = Array.prototype.slice.call(document.querySelectorAll(".story"));
    if (!rows.length) { return; }
    var at = -1;
    document.addEventListener("keydown", function (event) {
      if (event.target.closest("input, textarea, select")) { return; }
      if (event.key !== "j" && event.key !== "k") { return; }
      at = Math.max(0, Math.min(rows.length - 1, at + (event.key === "j" ? 1 : -1)));
      rows[at].scrollIntoView({block: "nearest"});
      rows[at].focus();
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    confirms(document);
    keys();
  });
}());
