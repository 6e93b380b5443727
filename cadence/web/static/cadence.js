// Cadence dashboard: the only script.  Forms marked data-busy say what is happening while the
// server works (a live check takes seconds) and cannot be sent twice.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.busy) return;
  const status = form.querySelector(".busy");
  if (status) status.textContent = form.dataset.busy;
  for (const button of form.querySelectorAll("button[type=submit]")) {
    setTimeout(() => { button.disabled = true; }, 0);
  }
});
