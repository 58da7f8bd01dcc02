// smsblast console: small progressive enhancements. Every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-once]")) {
    // A second click while the first submit is on its way does nothing (the server is idempotent anyway).
    form.addEventListener("submit", (event) => {
      if (form.dataset.submitted === "true") {
        event.preventDefault();
        return;
      }
      form.dataset.submitted = "true";
      for (const button of form.querySelectorAll("button[type=submit]")) button.setAttribute("aria-disabled", "true");
    });
  }
});
