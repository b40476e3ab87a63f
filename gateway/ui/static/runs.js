// artifact-gateway UI, runs tables: confirmation before deleting, and a clear message (on the same
// page) when Compare is pressed with too few or too many runs ticked. No inline scripts (see the CSP).
(function () {
  "use strict";

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    if (form.id === "compare") {
      const ticked = Array.from(form.elements).filter((el) => el.name === "runs" && el.checked).length;
      const min = Number(form.dataset.min), max = Number(form.dataset.max);
      if (ticked < min || ticked > max) {
        event.preventDefault();
        const problem = document.getElementById("compare-problem");
        problem.textContent = "Tick " + min + " to " + max + " runs to compare; " + ticked + (ticked === 1 ? " was" : " were") + " ticked.";
        problem.hidden = false;
      }
    }
  });
})();
