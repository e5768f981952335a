// The console works without this file; it adds the CSRF header to htmx's requests and the
// pause button of live lists. No other script runs (the Content-Security-Policy allows only
// scripts served from /ui/static).
document.addEventListener("htmx:configRequest", (event) => {
  const token = document.querySelector('meta[name="csrf-token"]');
  if (token) event.detail.headers["X-CSRF-Token"] = token.content;
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-pause]");
  if (!button) return;
  const live = document.getElementById(button.dataset.pause);
  if (!live) return;
  const paused = live.toggleAttribute("data-paused");
  button.textContent = paused ? "Resume" : "Pause";
  button.setAttribute("aria-pressed", paused ? "true" : "false");
});
// A paused list keeps its rows: new ones are dropped until it resumes (a reload catches up).
document.addEventListener("htmx:sseBeforeMessage", (event) => {
  if (event.target.closest("[data-paused]")) event.preventDefault();
});
