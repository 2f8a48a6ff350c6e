// Settings: "Test connection" asks the server to list the provider's offers with the stored key.
const csrf = document.querySelector("input[name=csrfmiddlewaretoken]")?.value;

for (const button of document.querySelectorAll("button.test-key")) {
  button.addEventListener("click", async () => {
    const result = button.parentElement.querySelector(".test-result");
    result.textContent = "Testing…";
    result.className = "tiny test-result muted";
    try {
      const response = await fetch(button.dataset.url, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrf } });
      const body = await response.json();
      result.textContent = body.ok ? `OK — ${body.message}` : `Error: ${body.message}`;
      result.className = `tiny test-result ${body.ok ? "ok" : "field-error"}`;
    } catch (error) {
      result.textContent = `Error: ${error.message}`;
      result.className = "tiny test-result field-error";
    }
  });
}
