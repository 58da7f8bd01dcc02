// smsblast console: small progressive enhancements. Every page works without this file.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

// Forms that must run once: a second click while the first submit is on its way does nothing (the server
// is idempotent as well: the confirm form carries one Idempotency-Key per rendering).
function guardDoubleSubmit(form) {
  form.addEventListener("submit", (event) => {
    if (form.dataset.submitted === "true") {
      event.preventDefault();
      return;
    }
    form.dataset.submitted = "true";
    for (const button of form.querySelectorAll("button[type=submit]")) button.setAttribute("aria-disabled", "true");
  });
}

function showFieldError(input, message) {
  let error = document.getElementById(`${input.id}-error`);
  if (!error) {
    error = document.createElement("p");
    error.className = "field-error";
    error.id = `${input.id}-error`;
    error.setAttribute("role", "alert");
    input.insertAdjacentElement("afterend", error);
  }
  error.textContent = message;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", error.id);
}

// The upload step: the file goes up as the request body with a progress bar; the form's other fields ride in
// the query. Drag and drop fills the file input.
function enhanceUpload(form) {
  const input = form.querySelector('input[type="file"]');
  const progress = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const zone = form.querySelector("[data-dropzone]");
  if (zone) {
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      if (event.dataTransfer && event.dataTransfer.files.length > 0) input.files = event.dataTransfer.files;
    });
  }
  form.addEventListener("submit", (event) => {
    if (event.submitter && event.submitter.hasAttribute("formaction")) return; // the sample CSV download
    event.preventDefault();
    const file = input.files && input.files[0];
    if (!file) {
      showFieldError(input, "choose a CSV file to upload");
      input.focus();
      return;
    }
    const query = new URLSearchParams({ _csrf: csrfToken(), filename: file.name });
    for (const name of ["provider", "listedTemplateId", "templateIdTyped", "templateContent"]) {
      const field = form.elements.namedItem(name);
      if (field && field.value) query.set(name, field.value);
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/campaigns/new/upload?${query}`);
    xhr.setRequestHeader("content-type", "text/csv");
    xhr.setRequestHeader("accept", "application/json");
    progress.hidden = false;
    status.textContent = `Uploading ${file.name}…`;
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) {
        progress.value = Math.round((e.loaded / e.total) * 100);
        status.textContent = `Uploading ${file.name}: ${progress.value} %`;
      }
    });
    xhr.addEventListener("load", () => {
      let answer;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        answer = { error: { field: "file", message: "the server's answer could not be read; try again" } };
      }
      if (xhr.status < 300 && answer.next) {
        status.textContent = "Uploaded; reading the columns…";
        location.assign(answer.next);
        return;
      }
      progress.hidden = true;
      status.textContent = "";
      const error = answer.error || { field: "file", message: `upload refused (HTTP ${xhr.status})` };
      const target = document.getElementById(error.field === "templateId" ? "templateIdTyped" : error.field) || input;
      showFieldError(target, error.message);
      target.focus();
    });
    xhr.addEventListener("error", () => {
      progress.hidden = true;
      showFieldError(input, "the upload was interrupted: check the connection and try again");
    });
    xhr.send(file);
  });
}

// The "when" step: the browser's own time zone is the likeliest one.
function preselectZone(select) {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && [...select.options].some((o) => o.value === zone)) select.value = zone;
}

// The campaign page: every server-sent event (falling back to polling) fetches the live part again, rendered
// by the server, so the page shows what a reload would. The rate and time left are measured here.
function followCampaign(section) {
  const samples = [];
  let finished = false;
  let refreshing = false;
  const refresh = async () => {
    if (refreshing) return;
    refreshing = true;
    try {
      const response = await fetch(section.dataset.live, { headers: { accept: "text/html" } });
      if (!response.ok) return;
      const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
      const live = parsed.getElementById("live");
      const controls = parsed.getElementById("controls");
      if (live) document.getElementById("live").replaceWith(live);
      const current = document.getElementById("controls");
      // The buttons change only with the status, so keyboard focus stays where it was otherwise.
      if (controls && current && current.dataset.status !== controls.dataset.status) current.replaceWith(controls);
      if (live) {
        showRate(live);
        if (live.dataset.final === "true") finished = true;
      }
    } finally {
      refreshing = false;
    }
  };
  const showRate = (live) => {
    const done = Number(live.dataset.done);
    const total = Number(live.dataset.total);
    samples.push({ at: Date.now(), done });
    while (samples.length > 1 && samples[0].at < Date.now() - 15000) samples.shift();
    const rate = document.getElementById("rate");
    if (!rate || samples.length < 2) return;
    const first = samples[0];
    const last = samples[samples.length - 1];
    const perSecond = (last.done - first.done) / ((last.at - first.at) / 1000);
    if (live.dataset.final === "true" || live.dataset.status !== "running") rate.textContent = "";
    else if (perSecond > 0) {
      const left = Math.ceil((total - done) / perSecond);
      rate.textContent = `${Math.round(perSecond)} per second, about ${left < 60 ? `${left} s` : `${Math.ceil(left / 60)} min`} left`;
    } else rate.textContent = "not moving";
  };
  const poll = () => {
    const timer = setInterval(() => {
      if (finished) clearInterval(timer);
      else void refresh();
    }, 2000);
  };
  if (document.getElementById("live").dataset.final === "true") return;
  if (typeof EventSource === "undefined") return poll();
  const events = new EventSource(section.dataset.events);
  events.addEventListener("progress", () => void refresh());
  events.addEventListener("end", () => {
    events.close();
    void refresh();
  });
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED && !finished) poll();
  });
}

// Listed templates are the legacy SMS API's: choosing one chooses that provider too.
function legacyWhenListed(select) {
  select.addEventListener("change", () => {
    const provider = select.form && select.form.elements.namedItem("provider");
    if (select.value && provider) provider.value = "legacy";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll('select[name="listedTemplateId"]')) legacyWhenListed(select);
  for (const section of document.querySelectorAll("section[data-live]")) followCampaign(section);
  for (const form of document.querySelectorAll("form[data-once]")) guardDoubleSubmit(form);
  for (const form of document.querySelectorAll("form[data-upload]")) enhanceUpload(form);
  for (const select of document.querySelectorAll('select[data-default-zone="browser"]')) preselectZone(select);
});
