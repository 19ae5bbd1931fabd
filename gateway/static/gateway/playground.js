// The endpoint playground: send the prompt to the playground's stream (the staff session authenticates
// it, the CSRF token goes in a header), show the answer as it streams, then the gateway's summary event.
(function () {
  "use strict";
  function ready() {
    var form = document.getElementById("playground-form");
    if (!form) { return; }
    var answer = document.getElementById("playground-answer");
    var errorBox = document.getElementById("playground-error");
    var facts = document.getElementById("playground-facts");
    var send = document.getElementById("playground-send");

    function showError(message) { errorBox.textContent = message; errorBox.hidden = false; }
    function fact(name, value) { facts.querySelector('[data-fact="' + name + '"]').textContent = value; }
    function summarise(summary) {
      fact("model", summary.model || "-");
      fact("attempts", String(summary.attempts));
      fact("tokens", summary.input_tokens + " / " + summary.output_tokens);
      fact("cost_usd", summary.cost_usd === null ? "unknown" : "$" + Number(summary.cost_usd).toFixed(6));
      fact("overhead_ms", summary.overhead_ms + " ms");
      facts.hidden = false;
    }
    function handle(block) {
      var event = "message";
      var data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("event:") === 0) { event = line.slice(6).trim(); }
        if (line.indexOf("data:") === 0) { data.push(line.slice(5).trim()); }
      });
      var text = data.join("\n");
      if (!text || text === "[DONE]") { return; }
      var parsed = JSON.parse(text);
      if (event === "gateway") { summarise(parsed); return; }
      if (parsed.error) { showError(parsed.error.message); return; }
      (parsed.choices || []).forEach(function (choice) {
        if (choice.delta && choice.delta.content) { answer.textContent += choice.delta.content; }
      });
    }
    async function submit(event) {
      event.preventDefault();
      var messages = [];
      var system = document.getElementById("playground-system").value.trim();
      if (system) { messages.push({role: "system", content: system}); }
      messages.push({role: "user", content: document.getElementById("playground-prompt").value});
      answer.textContent = "";
      errorBox.hidden = true;
      facts.hidden = true;
      send.disabled = true;
      try {
        var response = await fetch(form.dataset.streamUrl, {
          method: "POST", credentials: "same-origin",
          headers: {"Content-Type": "application/json",
                    "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value},
          body: JSON.stringify({messages: messages})
        });
        if (!response.ok) {
          var failure = await response.json().catch(function () { return null; });
          showError(failure && failure.error ? failure.error.message : "HTTP " + response.status);
          return;
        }
        var reader = response.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        for (;;) {
          var step = await reader.read();
          if (step.done) { break; }
          buffer += decoder.decode(step.value, {stream: true});
          var blocks = buffer.split("\n\n");
          buffer = blocks.pop();
          blocks.forEach(handle);
        }
        if (buffer.trim()) { handle(buffer); }
      } catch (failure) {
        showError(String(failure));
      } finally {
        send.disabled = false;
      }
    }
    form.addEventListener("submit", submit);
    document.querySelectorAll("button.copy").forEach(function (button) {
      button.addEventListener("click", function () {
        var code = document.getElementById(button.dataset.copy).textContent;
        navigator.clipboard.writeText(code).then(function () { button.textContent = "Copied"; });
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", ready); } else { ready(); }
})();
