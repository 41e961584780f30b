// The faceprior web page: pick photos, submit them as one job, follow its progress, and show
// each result before/after with its face boxes. Plain JavaScript, no build step, no network
// access beyond this server (the page works offline). The token, when the server has one,
// travels in the cookie the server sets when the page is opened with ?token=...
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
const SVG = "http://www.w3.org/2000/svg";
const POLL_MS = 400;

const state = { files: [], busy: false };

async function api(path, init = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...init });
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    error.retryAfter = Number(response.headers.get("retry-after")) || 0;
    throw error;
  }
  return response;
}

function say(message, kind = "") {
  const status = $("#status");
  status.textContent = message;
  status.className = `status ${kind}`;
}

async function loadModels() {
  const catalogue = await (await api("/v1/models")).json();
  const select = $("#model");
  select.replaceChildren();
  for (const model of catalogue.models.filter((m) => m.available)) {
    const option = new Option(model.name, model.name, false, model.name === catalogue.default);
    option.title = model.description || "";
    select.append(option);
  }
  if (catalogue.parsers.length) $("#mask").append(new Option("face parsing", "parsing"));
  for (const name of catalogue.backgrounds || []) $("#background").append(new Option(name, name));
  const knows = (name) => name in catalogue.options;
  for (const field of ["color_match", "mask", "faces", "background"]) {
    if (!knows(field)) $(`#${field}`).closest("label").hidden = true;
  }
  state.limits = catalogue.limits;
  // Faces chosen by index (faces=[0, 2]) let a result be redone with only the ticked faces.
  state.selectFaces = knows("faces") && catalogue.options.faces.type.includes("[");
}

function choose(fileList) {
  state.files = [...fileList];
  const list = $("#chosen");
  list.replaceChildren(...state.files.map((file) => {
    const item = document.createElement("li");
    item.textContent = `${file.name} (${(file.size / 1024).toFixed(0)} KB)`;
    return item;
  }));
  $("#restore").disabled = state.files.length === 0 || state.busy;
}

function optionFields() {
  const fields = {};
  for (const element of $$("#options select, #options input")) {
    if (element.value !== "" && !element.closest("label").hidden) fields[element.name] = element.value;
  }
  return fields;
}

async function submit(event) {
  event.preventDefault();
  if (!state.files.length || state.busy) return;
  const body = new FormData();
  for (const file of state.files) body.append("files", file, file.name);
  const fields = optionFields();
  for (const [name, value] of Object.entries(fields)) body.append(name, value);
  const files = state.files;
  state.busy = true;
  $("#restore").disabled = true;
  try {
    let job;
    for (;;) {
      try {
        job = await (await api("/v1/jobs", { method: "POST", body })).json();
        break;
      } catch (error) {
        if (error.status !== 503) throw error;
        const wait = Math.max(1, error.retryAfter);
        say(`The server is busy; trying again in ${wait} s…`);
        await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      }
    }
    await follow(job, files, fields);
  } catch (error) {
    say(error.message, "error");
  } finally {
    state.busy = false;
    $("#restore").disabled = state.files.length === 0;
  }
}

async function follow(job, files, fields) {
  const progress = $("#progress");
  progress.hidden = false;
  const shown = new Set();
  for (;;) {
    job = await (await api(`/v1/jobs/${job.id}`)).json();
    const { done, total } = job.progress;
    progress.max = Math.max(total, 1);
    progress.value = done;
    say(`${job.status}: ${done} of ${total}`);
    for (const [index, item] of job.items.entries()) {
      if (shown.has(index) || !["restored", "failed"].includes(item.status)) continue;
      shown.add(index);
      if (item.status === "failed") showFailure(item);
      else if (item.media_type.startsWith("video/")) await showVideo(item);
      else await showResult(files[index], item, fields);
    }
    if (["done", "failed", "cancelled"].includes(job.status)) break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  progress.hidden = true;
  const failed = job.items.filter((item) => item.status === "failed").length;
  if (job.status === "failed") say(job.error, "error");
  else say(`${job.status}: ${job.items.length - failed} restored, ${failed} failed`,
    failed ? "error" : "done");
}

function showFailure(item) {
  const article = document.createElement("article");
  article.className = "result failed";
  article.textContent = item.error;
  $("#results").prepend(article);
}

async function showVideo(item) {
  const blob = await (await api(item.result)).blob();
  const url = URL.createObjectURL(blob);
  const article = document.createElement("article");
  article.className = "result";
  const title = document.createElement("h2");
  title.textContent = item.input;
  const video = document.createElement("video");
  Object.assign(video, { src: url, controls: true, className: "video" });
  const download = document.createElement("a");
  Object.assign(download, { href: url, className: "button download", textContent: "Download" });
  download.download = restoredName(item.input, "");
  const summary = document.createElement("p");
  summary.className = "summary";
  summary.textContent = `${item.frames} frames, ${item.restored_faces} faces restored, ` +
    `${item.fps} frames/s, model ${item.model}`;
  article.append(title, video, download, summary);
  $("#results").prepend(article);
}

async function showResult(file, item, fields) {
  const blob = await (await api(item.result)).blob();
  const beforeUrl = URL.createObjectURL(file);
  const card = $("#result-template").content.firstElementChild.cloneNode(true);
  const [width, height] = item.input_size;
  $(".name", card).textContent = item.input;
  for (const image of $$("img.before", card)) image.src = beforeUrl;
  showAfter(card, item, blob);
  drawBoxes(card, item.faces, width, height);
  const slider = $(".slider", card);
  const split = () => card.style.setProperty("--split", `${slider.value}%`);
  slider.addEventListener("input", split);
  split();
  $(".show-side", card).addEventListener("change", (event) => {
    $(".compare", card).hidden = event.target.checked;
    $(".pair", card).hidden = !event.target.checked;
  });
  $(".show-boxes", card).addEventListener("change", (event) => {
    card.classList.toggle("no-boxes", !event.target.checked);
  });
  const apply = $(".apply", card);
  apply.hidden = !state.selectFaces || item.faces.length < 2;
  apply.addEventListener("click", () => restoreChosenFaces(card, file, item, fields));
  $("#results").prepend(card);
}

function showAfter(card, report, blob) {
  const url = URL.createObjectURL(blob);
  const [width, height] = report.input_size;
  const [outWidth, outHeight] = report.output_size;
  for (const image of $$("img.after", card)) {
    if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
    image.src = url;
  }
  const compare = $(".compare", card);
  compare.style.aspectRatio = `${outWidth} / ${outHeight}`;
  compare.style.maxWidth = `calc(75vh * ${outWidth / outHeight})`;  // tall photos fit the screen
  const download = $(".download", card);
  download.href = url;
  download.download = restoredName(report.input, blob.type);
  const seconds = report.timings && report.timings.total ? `, ${report.timings.total.toFixed(2)} s` : "";
  $(".summary", card).textContent =
    `${report.faces.length} face(s) restored, ${width}×${height} → ${outWidth}×${outHeight}, ` +
    `model ${report.model}${seconds}${report.message ? ` — ${report.message}` : ""}`;
}

// Restore the photo again with only the ticked faces (their indices from the first report).
async function restoreChosenFaces(card, file, item, fields) {
  const chosen = $$(".face-list input", card).filter((box) => box.checked)
    .map((box) => Number(box.dataset.index));
  const apply = $(".apply", card);
  const body = new FormData();
  body.append("image", file, file.name);
  for (const [name, value] of Object.entries(fields)) {
    if (name !== "faces") body.append(name, value);
  }
  body.append("faces", JSON.stringify(chosen));
  apply.disabled = true;
  say(`Restoring ${chosen.length} face(s) of ${item.input}…`);
  try {
    const answer = await (await api("/v1/restore", {
      method: "POST", body, headers: { accept: "application/json" },
    })).json();
    const bytes = Uint8Array.from(atob(answer.image_base64), (c) => c.charCodeAt(0));
    showAfter(card, answer.report, new Blob([bytes], { type: answer.media_type }));
    say(`${item.input}: ${chosen.length} face(s) restored, the others kept as they were.`, "done");
  } catch (error) {
    say(error.message, "error");
  } finally {
    apply.disabled = false;
  }
}

function drawBoxes(card, faces, width, height) {
  const list = $(".face-list", card);
  for (const svg of $$("svg.boxes", card)) svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  faces.forEach((face, number) => {
    const [x0, y0, x1, y1] = face.box;
    for (const svg of $$("svg.boxes", card)) {
      const rect = document.createElementNS(SVG, "rect");
      Object.entries({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 })
        .forEach(([key, value]) => rect.setAttribute(key, value));
      rect.dataset.face = number;
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("x", x0 + 4);
      label.setAttribute("y", y0 + Math.max(12, (y1 - y0) * 0.12));
      label.setAttribute("font-size", Math.max(10, (y1 - y0) * 0.12));
      label.dataset.face = number;
      label.textContent = face.index ?? number;  // the index faces=[...] and --faces take
      svg.append(rect, label);
    }
    const item = document.createElement("li");
    const toggle = document.createElement("input");
    toggle.type = "checkbox";
    toggle.checked = true;
    toggle.dataset.index = face.index ?? number;
    toggle.addEventListener("change", () => {
      for (const mark of $$(`[data-face="${number}"]`, card)) mark.classList.toggle("off", !toggle.checked);
      $(".apply", card).disabled = !$$(".face-list input", card).some((box) => box.checked);
    });
    const score = face.score == null ? "" : `, score ${face.score.toFixed(2)}`;
    const text = document.createElement("label");
    text.append(toggle, ` face ${face.index ?? number}${score}`);
    item.append(text);
    list.append(item);
  });
}

function restoredName(input, mediaType) {
  const dot = input.lastIndexOf(".");
  const suffix = { "image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp",
    "image/tiff": ".tif", "image/bmp": ".bmp" }[mediaType] || (dot > 0 ? input.slice(dot) : "");
  return `${dot > 0 ? input.slice(0, dot) : input}_restored${suffix}`;
}

function setUp() {
  const drop = $("#drop");
  $("#pick").addEventListener("change", (event) => choose(event.target.files));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choose(event.dataTransfer.files);
  });
  $("#strength").addEventListener("input", (event) => {
    $("#strength-value").textContent = Number(event.target.value).toFixed(2);
  });
  $("#options").addEventListener("submit", submit);
  loadModels().then(() => say("Ready.")).catch((error) => say(error.message, "error"));
}

setUp();
