// The guardrail form: show the settings help of the kind selected, hide the others.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const kind = document.getElementById("id_kind");
  if (!kind) return;
  const show = () => {
    for (const help of document.querySelectorAll("[data-guardrail-kind]")) {
      help.hidden = kind.value !== "" && help.dataset.guardrailKind !== kind.value;
    }
  };
  kind.addEventListener("change", show);
  show();
});
