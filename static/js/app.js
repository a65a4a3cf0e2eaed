// OpenCS: small behaviours on top of htmx. No inline scripts; loaded with `defer` from base.html.
"use strict";

(function () {
  function mb(bytes) {
    return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  }

  // Upload progress on the data-import form: htmx fires htmx:xhr:progress on the form while
  // the browser sends the files (xhr.upload), then once more for the (tiny) response.
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = event.target.closest && event.target.closest("#upload-form");
    if (!form || !event.detail.lengthComputable || !event.detail.total) return;
    var box = document.getElementById("upload-form-progress");
    if (!box) return;
    var bar = box.querySelector("progress");
    var label = box.querySelector("p");
    var percent = Math.round((100 * event.detail.loaded) / event.detail.total);
    box.hidden = false;
    bar.value = percent;
    label.textContent =
      percent < 100
        ? "Uploading… " + percent + "% (" + mb(event.detail.loaded) + " of " + mb(event.detail.total) + ")"
        : "Uploaded. Checking the rows…";
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.target.id !== "upload-form") return;
    var box = document.getElementById("upload-form-progress");
    if (box) {
      box.hidden = false;
      box.querySelector("progress").removeAttribute("value"); // indeterminate until bytes move
      box.querySelector("p").textContent = "Uploading…";
    }
  });
})();
