// artifact-gateway UI: the log_image grid's step slider. The server renders the grid at the URL's step
// (?step=); the slider shows another step in place and keeps it in the URL (replaceState).
(function () {
  "use strict";

  function setup() {
    const block = document.getElementById("image-series-data");
    const slider = document.getElementById("image-step");
    if (!block || !slider) return;
    const data = JSON.parse(block.textContent);
    const output = document.getElementById("image-step-value");
    const cards = Array.from(document.querySelectorAll("figure.image-card"));

    function show(index) {
      const step = data.steps[index];
      output.textContent = String(step);
      slider.setAttribute("aria-valuetext", String(step));
      cards.forEach((card, i) => {
        const images = data.series[i].images;
        let shown = images[0];
        for (const image of images) if (image.step <= step) shown = image; // its latest image up to the step
        const img = card.querySelector("img");
        if (img.dataset.step !== String(shown.step)) {
          img.src = shown.url + "?raw=1";
          img.dataset.step = String(shown.step);
          img.alt = data.series[i].key + " at step " + shown.step;
        }
        card.querySelector(".image-card-link").href = shown.full_url;
        card.querySelector(".image-card-step").textContent = String(shown.step);
      });
      const url = new URL(location.href);
      url.searchParams.set("step", String(step));
      window.history.replaceState(null, "", url);
    }

    slider.addEventListener("input", () => show(Number(slider.value)));
    document.body.dataset.imagesReady = "true";
  }

  document.addEventListener("DOMContentLoaded", setup);
})();
