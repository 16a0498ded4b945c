// dedupdb review: keyboard shortcuts, copy selection, full-size compare (synchronised zoom and
// pan, flicker, difference), and the CSRF header on every htmx request. No inline scripts: the
// page's Content-Security-Policy allows only this file and htmx.
(function () {
  "use strict";

  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const page = document.body.dataset.page;

  document.body.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers["X-CSRF-Token"] = csrf;
  });

  // Errors (4xx, 5xx) are shown in the message area rather than dropped.
  document.body.addEventListener("htmx:beforeSwap", (event) => {
    const status = event.detail.xhr.status;
    if (status >= 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
      event.detail.target = document.getElementById("messages");
    }
  });

  // A finished undo or apply changes the history: show it.
  document.body.addEventListener("htmx:afterSwap", (event) => {
    const status = document.getElementById("job-status");
    if (page === "history" && status && status.dataset.status !== "running" &&
        event.detail.target && event.detail.target.id !== "messages" && !window.__reloaded) {
      window.__reloaded = true;
      window.setTimeout(() => window.location.reload(), 600);
    }
  });

  function post(url, values) {
    const sep = url.includes("?") ? "&" : "?";
    const query = window.location.search ? sep + window.location.search.slice(1) : "";
    return htmx.ajax("POST", url + query, { values: values || {}, swap: "none" });
  }

  const legend = document.getElementById("legend");
  function toggleLegend() {
    if (legend.open) legend.close(); else legend.showModal();
  }

  document.addEventListener("click", (event) => {
    const target = event.target.closest("[data-action], [data-post], [data-keep], [data-mode], [data-zoom]");
    if (!target) return;
    if (target.dataset.action === "legend") toggleLegend();
    else if (target.dataset.action === "compare") compare.open();
    else if (target.dataset.action === "close-compare") compare.close();
    else if (target.dataset.post) post(target.dataset.post, target.dataset.stay ? { stay: "1" } : {});
    else if (target.dataset.keep) keepOnly(target.dataset.keep);
    else if (target.dataset.mode) compare.mode(target.dataset.mode);
    else if (target.dataset.zoom) compare.zoomButton(target.dataset.zoom);
  });

  // ------------------------------------------------------------------ the cluster page

  const copies = Array.from(document.querySelectorAll("#copies .copy"));
  const form = document.getElementById("decide");
  const cluster = document.getElementById("cluster");
  let selected = copies.length > 1 ? 1 : 0;

  function select(index, quiet) {
    if (!copies.length) return;
    selected = (index + copies.length) % copies.length;
    copies.forEach((c, i) => c.classList.toggle("selected", i === selected));
    if (!quiet) copies[selected].scrollIntoView({ block: "nearest", inline: "nearest" });
    if (compare.isOpen()) compare.render();
  }

  function keepOnly(id) {
    form.querySelectorAll('input[name="keep"]').forEach((box) => { box.checked = box.value === String(id); });
    const radio = form.querySelector('input[name="keeper"][value="' + id + '"]');
    if (radio) radio.checked = true;
    htmx.trigger(form, "submit");
  }

  function toggleKeep() {
    const box = copies[selected] && copies[selected].querySelector('input[name="keep"]');
    if (!box) return;
    box.checked = !box.checked;
    copies[selected].classList.toggle("kept", box.checked);
  }

  if (form) {
    // A keeper is always kept.
    form.addEventListener("change", (event) => {
      if (event.target.name === "keeper") {
        const box = form.querySelector('input[name="keep"][value="' + event.target.value + '"]');
        if (box) box.checked = true;
      }
      copies.forEach((c) => c.classList.toggle("kept", c.querySelector('input[name="keep"]').checked));
    });
    copies.forEach((c, i) => c.addEventListener("click", (event) => {
      if (!event.target.closest("input, button, a, summary")) select(i);
    }));
  }

  // ------------------------------------------------------------------ full-size compare

  const compare = (function () {
    const panel = document.getElementById("compare");
    const panes = document.getElementById("panes");
    const note = document.getElementById("compare-note");
    const level = document.getElementById("zoom-level");
    let view = { scale: 1, x: 0, y: 0 };
    let mode = "side";
    let timer = null;
    let drag = null;

    function isOpen() { return panel && !panel.hidden; }

    function keeperIndex() {
      const id = cluster ? cluster.dataset.keeper : null;
      const at = copies.findIndex((c) => c.dataset.id === id);
      return at < 0 ? 0 : at;
    }

    function pane(copy, label) {
      const box = document.createElement("div");
      box.className = "pane";
      const img = document.createElement("img");
      img.src = copy.dataset.full;
      img.alt = label;
      img.draggable = false;
      const caption = document.createElement("p");
      caption.className = "pane-caption";
      caption.textContent = label;  // text, never HTML: file names are untrusted
      box.append(img);
      // The parts other copies show, outlined as on the copy's thumbnail; the outlines fill
      // the pane as the picture does, and zoom and pan with it (apply).
      const outlines = copy.querySelector("svg.outlines");
      if (outlines) box.append(outlines.cloneNode(true));
      box.append(caption);
      return box;
    }

    function label(index) {
      const path = copies[index].querySelector(".path").textContent.trim();
      return (index === keeperIndex() ? "keeper: " : "copy " + (index + 1) + ": ") + path;
    }

    function apply() {
      panes.querySelectorAll("img, canvas, svg.outlines").forEach((el) => {
        el.style.transform = "translate(" + view.x + "px," + view.y + "px) scale(" + view.scale + ")";
      });
      level.textContent = view.scale === 1 ? "fit" : Math.round(view.scale * 100) + "%";
    }

    function stopTimer() { if (timer) { window.clearInterval(timer); timer = null; } }

    function render() {
      stopTimer();
      panes.replaceChildren();
      panel.querySelectorAll("[data-mode]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === mode)));
      const k = keeperIndex();
      const other = selected === k ? (k + 1) % copies.length : selected;
      if (mode === "side") {
        copies.forEach((c, i) => {
          const p = pane(c, label(i));
          if (i === selected) p.classList.add("selected");
          panes.append(p);
        });
        note.textContent = "Wheel or + / − to zoom all copies together; drag to pan.";
      } else if (mode === "flicker") {
        const a = pane(copies[k], label(k));
        const b = pane(copies[other], label(other));
        const box = document.createElement("div");
        box.className = "pane flicker";
        b.classList.add("hidden-frame");
        box.append(a, b);
        panes.append(box);
        let showing = 0;
        timer = window.setInterval(() => {
          showing = 1 - showing;
          a.classList.toggle("hidden-frame", showing === 1);
          b.classList.toggle("hidden-frame", showing === 0);
        }, 450);
        note.textContent = "Flicker: keeper and copy " + (other + 1) + " in turn (← → chooses the copy).";
      } else {
        panes.append(difference(copies[k], copies[other]));
        note.textContent = "Difference with the keeper (turned as the copy is), amplified: black is identical (← → chooses the copy).";
      }
      apply();
    }

    function difference(a, b) {
      const box = document.createElement("div");
      box.className = "pane";
      const canvas = document.createElement("canvas");
      box.append(canvas);
      const first = new Image();
      const second = new Image();
      let loaded = 0;
      function draw() {
        loaded += 1;
        if (loaded < 2) return;
        const width = Math.min(second.naturalWidth, 2048);
        const height = Math.round(second.naturalHeight * width / second.naturalWidth);
        canvas.width = width;
        canvas.height = height;
        const ctx = canvas.getContext("2d", { willReadFrequently: true });
        aligned(ctx, first, b.dataset.transform, width, height);
        const base = ctx.getImageData(0, 0, width, height);
        ctx.setTransform(1, 0, 0, 1, 0, 0);
        ctx.drawImage(second, 0, 0, width, height);
        const top = ctx.getImageData(0, 0, width, height);
        for (let i = 0; i < base.data.length; i += 4) {
          for (let c = 0; c < 3; c += 1) {
            top.data[i + c] = Math.min(255, 4 * Math.abs(top.data[i + c] - base.data[i + c]));
          }
          top.data[i + 3] = 255;
        }
        ctx.putImageData(top, 0, 0);
        apply();
      }
      first.onload = draw;
      second.onload = draw;
      first.src = a.dataset.full;
      second.src = b.dataset.full;
      return box;
    }

    // Draw the keeper turned as the copy is (its transform, hashes.DIHEDRAL: "the keeper, so
    // transformed, matches this member"; rot90 is a quarter turn anticlockwise), filling
    // width x height, so that a rotated or mirrored copy is compared with what it shows.
    function aligned(ctx, image, transform, width, height) {
      const matrices = {
        rot90: [0, -1, 1, 0, 0, height, height, width],
        rot180: [-1, 0, 0, -1, width, height, width, height],
        rot270: [0, 1, -1, 0, width, 0, height, width],
        mirror: [-1, 0, 0, 1, width, 0, width, height],
        flip: [1, 0, 0, -1, 0, height, width, height],
        transpose: [0, 1, 1, 0, 0, 0, height, width],
        transverse: [0, -1, -1, 0, width, height, height, width],
      };
      const m = matrices[transform];
      if (!m) { ctx.drawImage(image, 0, 0, width, height); return; }
      ctx.setTransform(m[0], m[1], m[2], m[3], m[4], m[5]);
      ctx.drawImage(image, 0, 0, m[6], m[7]);
      ctx.setTransform(1, 0, 0, 1, 0, 0);
    }

    function zoom(factor, cx, cy) {
      const scale = Math.min(16, Math.max(1, view.scale * factor));
      const ratio = scale / view.scale;
      view = { scale: scale, x: cx - (cx - view.x) * ratio, y: cy - (cy - view.y) * ratio };
      if (scale === 1) view = { scale: 1, x: 0, y: 0 };
      apply();
    }

    if (panes) {
      panes.addEventListener("wheel", (event) => {
        event.preventDefault();
        const rect = event.target.closest(".pane").getBoundingClientRect();
        zoom(event.deltaY < 0 ? 1.25 : 0.8, event.clientX - rect.left - rect.width / 2,
             event.clientY - rect.top - rect.height / 2);
      }, { passive: false });
      panes.addEventListener("pointerdown", (event) => {
        drag = { x: event.clientX - view.x, y: event.clientY - view.y };
        panes.setPointerCapture(event.pointerId);
      });
      panes.addEventListener("pointermove", (event) => {
        if (!drag) return;
        view.x = event.clientX - drag.x;
        view.y = event.clientY - drag.y;
        apply();
      });
      panes.addEventListener("pointerup", () => { drag = null; });
    }

    return {
      isOpen: isOpen,
      render: render,
      open() { if (!panel || !copies.length) return; panel.hidden = false; view = { scale: 1, x: 0, y: 0 }; render(); },
      close() { if (!panel) return; stopTimer(); panel.hidden = true; panes.replaceChildren(); },
      mode(name) { mode = name; if (!isOpen()) this.open(); else render(); },
      zoomButton(what) {
        if (what === "in") zoom(1.5, 0, 0);
        else if (what === "out") zoom(1 / 1.5, 0, 0);
        else { view = { scale: 1, x: 0, y: 0 }; apply(); }
      },
    };
  })();

  if (form) select(selected, true);

  // ------------------------------------------------------------------ the list page

  // The filter's menus apply at once; the search box as you type (htmx, in the form). Not on
  // the search box's "change": that fires when it loses focus, as a click on a result begins,
  // and the list swapped in meanwhile would swallow the click.
  const filters = document.getElementById("filters");
  if (filters) {
    filters.querySelectorAll("select").forEach((menu) => {
      menu.addEventListener("change", () => htmx.trigger(filters, "submit"));
    });
  }

  const rows = Array.from(document.querySelectorAll(".cluster-row"));
  let row = -1;
  function selectRow(index) {
    const current = Array.from(document.querySelectorAll(".cluster-row"));
    if (!current.length) return;
    row = Math.max(0, Math.min(current.length - 1, index));
    current.forEach((r, i) => r.classList.toggle("selected", i === row));
    current[row].scrollIntoView({ block: "nearest" });
  }

  // ------------------------------------------------------------------ keys

  function go(id) {
    const link = document.getElementById(id);
    if (link) window.location.href = link.href;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target.closest("input, select, textarea");
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const key = event.key;
    if (key === "?") { toggleLegend(); event.preventDefault(); return; }
    if (key === "Escape") {
      if (compare.isOpen()) compare.close();
      return;
    }
    if (page === "list") {
      const current = Array.from(document.querySelectorAll(".cluster-row"));
      if (key === "j") selectRow(row + 1);
      else if (key === "k") selectRow(row - 1);
      else if (key === "Enter" && current[row]) window.location.href = current[row].dataset.href;
      else if (key === "/") { document.getElementById("search").focus(); event.preventDefault(); }
      return;
    }
    if (page !== "cluster") return;
    const actions = {
      j: () => go("next"),
      k: () => go("prev"),
      ArrowRight: () => select(selected + 1),
      l: () => select(selected + 1),
      ArrowLeft: () => select(selected - 1),
      h: () => select(selected - 1),
      c: () => keepOnly(copies[selected].dataset.id),
      m: () => toggleKeep(),
      Enter: () => htmx.trigger(form, "submit"),
      a: () => document.getElementById("accept").click(),
      n: () => document.getElementById("not-duplicates").click(),
      s: () => document.getElementById("skip").click(),
      u: () => { const f = document.getElementById("forget"); if (f) f.click(); },
      f: () => (compare.isOpen() ? compare.close() : compare.open()),
      t: () => compare.mode("flicker"),
      d: () => compare.mode("diff"),
      "+": () => compare.zoomButton("in"),
      "=": () => compare.zoomButton("in"),
      "-": () => compare.zoomButton("out"),
      "0": () => compare.zoomButton("fit"),
    };
    const action = actions[key];
    if (action) { action(); event.preventDefault(); }
  });

  if (rows.length && page === "list") row = -1;
})();
