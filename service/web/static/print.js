// An enhancement only: without JavaScript the browser's own Print gives the same page.
document.querySelectorAll(".print-button").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
