// The review page's keys: a agree, d disagree (then the expected value), s skip.
document.addEventListener("keydown", function (e) {
  if (e.target.closest("textarea, input[type=text], select") || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "a") { document.getElementById("v-agree").checked = true; document.getElementById("vote-form").requestSubmit(); }
  else if (e.key === "d") { document.getElementById("v-disagree").checked = true; document.getElementById("expected_value").focus(); e.preventDefault(); }
  else if (e.key === "s") { window.location = document.getElementById("skip-link").href; }
});
