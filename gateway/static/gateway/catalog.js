// Model catalog suggestions on the model definition form: the model names known for the chosen provider,
// and, when one is chosen, its list prices in the price fields that are still empty.
(function () {
  "use strict";
  function ready() {
    var data = document.getElementById("catalog-data");
    var input = document.getElementById("id_model_name");
    var provider = document.getElementById("id_provider");
    var list = document.getElementById("catalog-models");
    var info = document.getElementById("catalog-model-info");
    if (!data || !input || !provider || !list) { return; }
    var catalog = JSON.parse(data.textContent);
    var prices = ["input_cost_per_million", "output_cost_per_million", "cached_input_cost_per_million",
                  "audio_input_cost_per_million", "audio_output_cost_per_million"];

    function entries() { return catalog[provider.value] || []; }
    function suggest() {
      list.textContent = "";
      entries().forEach(function (entry) {
        var option = document.createElement("option");
        option.value = entry.model_name;
        list.appendChild(option);
      });
    }
    function fill() {
      var found = entries().filter(function (entry) { return entry.model_name === input.value; })[0];
      info.textContent = "";
      if (!found) { return; }
      prices.forEach(function (name) {
        var field = document.getElementById("id_" + name);
        if (field && field.value === "" && found[name] !== null) { field.value = String(found[name]); }
      });
      var limits = [];
      if (found.context_window) { limits.push("context " + found.context_window + " tokens"); }
      if (found.max_output_tokens) { limits.push("output up to " + found.max_output_tokens); }
      if (found.capabilities.length) { limits.push(found.capabilities.join(", ")); }
      info.textContent = "Catalog: " + limits.join("; ") + ". Prices filled from the catalog where empty.";
    }
    provider.addEventListener("change", suggest);
    input.addEventListener("change", fill);
    input.addEventListener("input", fill);
    suggest();
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", ready); } else { ready(); }
})();
