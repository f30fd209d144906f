// Keyboard-first review: every action on the queue and item pages has a key (press ? for the list).
(function () {
  "use strict";
  const page = document.body.dataset.page;
  const help = document.getElementById("help");

  function typing(event) {
    const tag = event.target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || event.target.isContentEditable;
  }

  function toggleHelp() {
    if (help.open) help.close(); else help.showModal();
  }
  document.querySelectorAll("[data-help-toggle]").forEach((button) => button.addEventListener("click", toggleHelp));

  // --- queue -------------------------------------------------------------------------------------------------
  const rows = Array.from(document.querySelectorAll("tr[data-row]"));
  let selected = 0;
  function select(index) {
    if (!rows.length) return;
    rows[selected].classList.remove("selected");
    selected = Math.max(0, Math.min(rows.length - 1, index));
    rows[selected].classList.add("selected");
    rows[selected].scrollIntoView({block: "nearest"});
  }
  const countLabel = document.querySelector("[data-selected-count]");
  function updateCount() {
    if (countLabel) {
      const n = document.querySelectorAll('input[name="uploads"]:checked').length;
      countLabel.textContent = n + " selected";
    }
  }
  document.querySelectorAll('input[name="uploads"]').forEach((box) => box.addEventListener("change", updateCount));
  const selectAll = document.querySelector("[data-select-all]");
  if (selectAll) {
    selectAll.addEventListener("change", () => {
      document.querySelectorAll('input[name="uploads"]').forEach((box) => { box.checked = selectAll.checked; });
      updateCount();
    });
  }
  if (page === "queue" && rows.length) select(0);

  // --- item --------------------------------------------------------------------------------------------------
  const item = document.querySelector(".item");
  const original = document.getElementById("original");
  const heatmap = document.getElementById("heatmap");
  const heatmapStatus = document.getElementById("heatmap-status");
  let heatmapLoaded = false;

  async function loadHeatmap(attempt = 0) {
    const response = await fetch(heatmap.dataset.src, {credentials: "same-origin"});
    if (response.status === 202) {
      // Made on the detection workers; give up after a minute rather than poll for as long as the tab is open.
      heatmapStatus.textContent = attempt < 30 ? "Heatmap is being made…" : "The heatmap is taking long; try later.";
      heatmapStatus.hidden = false;
      if (attempt < 30) setTimeout(() => loadHeatmap(attempt + 1), 2000);
      return;
    }
    if (!response.ok) {
      heatmapStatus.textContent = "No heatmap for this upload.";
      heatmapStatus.hidden = false;
      return;
    }
    heatmap.src = URL.createObjectURL(await response.blob());
    heatmapLoaded = true;
    heatmapStatus.hidden = true;
  }

  function toggleHeatmap() {
    if (!heatmap) return;
    const show = heatmap.hidden;
    heatmap.hidden = !show;
    original.hidden = show;
    if (show && !heatmapLoaded) loadHeatmap();
  }

  function decide(key) {
    const button = document.querySelector('#decision button[data-key="' + key + '"]');
    if (button) button.form.requestSubmit(button);
  }

  function go(url) {
    if (url) window.location.href = url;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape" && typing(event)) { event.target.blur(); return; }
    if (typing(event)) return;
    if (event.key === "?") { event.preventDefault(); toggleHelp(); return; }
    if (page === "queue") {
      if (event.key === "j") select(selected + 1);
      else if (event.key === "k") select(selected - 1);
      else if (event.key === "Enter" && rows.length) go(rows[selected].dataset.href);
      else if (event.key === "x" && rows.length) {
        const box = rows[selected].querySelector('input[name="uploads"]');
        if (box) { box.checked = !box.checked; updateCount(); }
      } else return;
      event.preventDefault();
    } else if (page === "item" && item) {
      if (event.key === "a" || event.key === "r" || event.key === "s") decide(event.key);
      else if (event.key === "h") toggleHeatmap();
      else if (event.key === "j") go(item.dataset.next);
      else if (event.key === "k") go(item.dataset.prev);
      else if (event.key === "q") go(item.dataset.queue);
      else if (event.key === "n") document.querySelector('#decision textarea')?.focus();
      else return;
      event.preventDefault();
    }
  });
})();
