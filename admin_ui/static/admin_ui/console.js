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

  function go(url) {
    if (url) window.location.href = url;
  }

  // --- queue: list rows or grid tiles ------------------------------------------------------------------------
  const rows = Array.from(document.querySelectorAll("[data-row]"));
  const grid = document.querySelector("[data-grid]");
  let selected = 0;
  function select(index) {
    if (!rows.length) return;
    rows[selected].classList.remove("selected");
    selected = Math.max(0, Math.min(rows.length - 1, index));
    rows[selected].classList.add("selected");
    rows[selected].scrollIntoView({block: "nearest"});
  }
  // Tiles per grid row, read from the layout (it changes with the window width).
  function gridColumns() {
    const top = rows[0].offsetTop;
    const columns = rows.findIndex((row) => row.offsetTop !== top);
    return columns === -1 ? rows.length : columns;
  }
  const countLabel = document.querySelector("[data-selected-count]");
  function checkedBoxes() {
    return document.querySelectorAll('input[name="uploads"]:checked');
  }
  function updateCount() {
    if (countLabel) countLabel.textContent = checkedBoxes().length + " selected";
  }
  document.querySelectorAll('input[name="uploads"]').forEach((box) => box.addEventListener("change", updateCount));
  document.querySelectorAll("[data-select-all]").forEach((selectAll) => {
    selectAll.addEventListener("change", () => {
      document.querySelectorAll('input[name="uploads"]').forEach((box) => { box.checked = selectAll.checked; });
      updateCount();
    });
  });
  if (page === "queue" && rows.length) select(0);

  // a / r / s on the queue decide every ticked upload at once (leads only: the bulk form is theirs).
  const bulkLabels = {a: "ai-generated", r: "real", s: "unsure"};
  function bulkDecide(key) {
    const form = document.getElementById("bulk");
    const label = form && form.querySelector('select[name="label"]');
    if (!label || !checkedBoxes().length) return false;
    label.value = bulkLabels[key];
    form.requestSubmit();
    return true;
  }

  function queueKey(event) {
    const step = grid && rows.length ? gridColumns() : 1;
    switch (event.key) {
      case "j": case "ArrowRight": select(selected + 1); break;
      case "k": case "ArrowLeft": select(selected - 1); break;
      case "ArrowDown": select(selected + step); break;
      case "ArrowUp": select(selected - step); break;
      case "Enter": if (rows.length) go(rows[selected].dataset.href); break;
      case "g": go(document.querySelector(grid ? '[data-view="list"]' : '[data-view="grid"]')?.href); break;
      case "x": {
        const box = rows.length && rows[selected].querySelector('input[name="uploads"]');
        if (box) { box.checked = !box.checked; updateCount(); }
        break;
      }
      case "a": case "r": case "s": return bulkDecide(event.key);
      default: return false;
    }
    return true;
  }

  // --- item ------------------------------------------------------------------------------------------------------
  const item = document.querySelector(".item");
  const original = document.getElementById("original");
  const heatmap = document.getElementById("heatmap");
  const heatmapStatus = document.getElementById("heatmap-status");
  const zoom = document.getElementById("zoom");
  // The heatmap replaces the original only once its picture has arrived, so nothing broken ever shows.
  let heatmapWanted = false;
  let heatmapState = "none"; // none | loading | loaded

  function showStatus(text) {
    heatmapStatus.textContent = text;
    heatmapStatus.hidden = !heatmapWanted || !text;
  }

  function renderHeatmap() {
    const showHeatmap = heatmapWanted && heatmapState === "loaded";
    if (showHeatmap && !original.hidden) {
      // Same box as the original: the overlay is the whole picture, at most 768 px on its long side.
      const box = original.getBoundingClientRect();
      if (box.width) {
        heatmap.style.width = box.width + "px";
        heatmap.style.height = box.height + "px";
      }
    }
    heatmap.hidden = !showHeatmap;
    original.hidden = showHeatmap;
    if (!heatmapWanted) heatmapStatus.hidden = true;
  }

  async function loadHeatmap(attempt = 0) {
    heatmapState = "loading";
    const response = await fetch(heatmap.dataset.src, {credentials: "same-origin"});
    if (response.status === 202) {
      // Made on the detection workers; give up after a minute rather than poll for as long as the tab is open.
      showStatus(attempt < 30 ? "Heatmap is being made…" : "The heatmap is taking long; try later.");
      if (attempt < 30) setTimeout(() => loadHeatmap(attempt + 1), 2000);
      else heatmapState = "none";
      return;
    }
    if (!response.ok) {
      heatmapState = "none";
      showStatus("No heatmap for this upload.");
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    heatmap.addEventListener("load", () => {
      heatmapState = "loaded";
      showStatus("");
      renderHeatmap();
    }, {once: true});
    heatmap.src = url;
  }

  function toggleHeatmap() {
    if (!heatmap) return;
    heatmapWanted = !heatmapWanted;
    if (heatmapWanted && heatmapState === "none") loadHeatmap();
    renderHeatmap();
  }

  // Full resolution: the picture at its own pixel size in a scrollable dialog; Esc or a click closes it.
  function openZoom(img) {
    if (!zoom || !img || !img.src) return;
    zoom.querySelector("img").src = img.src;
    zoom.showModal();
  }
  document.querySelectorAll("img[data-zoom]").forEach((img) => img.addEventListener("click", () => openZoom(img)));
  if (zoom) zoom.addEventListener("click", () => zoom.close());

  function decide(key) {
    const button = document.querySelector('#decision button[data-key="' + key + '"]');
    if (button) button.form.requestSubmit(button);
  }

  function itemKey(event) {
    switch (event.key) {
      case "a": case "r": case "s": decide(event.key); break;
      case "h": toggleHeatmap(); break;
      case "z": openZoom(original && original.hidden ? heatmap : original); break;
      case "j": go(item.dataset.next); break;
      case "k": go(item.dataset.prev); break;
      case "q": go(item.dataset.queue); break;
      case "n": document.querySelector("#decision textarea")?.focus(); break;
      default: return false;
    }
    return true;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Escape" && typing(event)) { event.target.blur(); return; }
    if (typing(event) || (zoom && zoom.open)) return; // an open zoom only listens for Esc (the dialog's own)
    if (event.key === "?") { event.preventDefault(); toggleHelp(); return; }
    const handled = page === "queue" ? queueKey(event) : page === "item" && item ? itemKey(event) : false;
    if (handled) event.preventDefault();
  });
})();
