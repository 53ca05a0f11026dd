// The scan page: a wedge scanner types the payload and presses Enter. A second trigger of the
// scanner (or a double tap) must not submit twice, so the form locks itself on the first submit.
const form = document.getElementById("scan-form");
const input = document.getElementById("id_payload");
let submitted = false;

form.addEventListener("submit", (event) => {
  if (submitted || !input.value.trim()) {
    event.preventDefault();
    return;
  }
  submitted = true;
  form.querySelectorAll("button").forEach((b) => { b.disabled = true; });
});

// Keep the box focused so the next scan always lands in it.
document.addEventListener("click", (event) => {
  if (!(event.target instanceof HTMLInputElement) && !(event.target instanceof HTMLButtonElement)) input.focus();
});

// Camera scanning where the browser has a BarcodeDetector (native, or the registry polyfill when installed).
function loadPolyfill() {
  return new Promise((resolve) => {
    const script = document.createElement("script");
    script.src = "/static/vendor/barcode-detector/polyfill.js";
    script.onload = () => {
      // Serve the decoder's WebAssembly from our own static files, never from a CDN.
      window.BarcodeDetectionAPI?.setZXingModuleOverrides?.({
        locateFile: (path) => `/static/vendor/zxing-wasm/${path}`,
      });
      resolve(window.BarcodeDetector || null);
    };
    script.onerror = () => resolve(null);
    document.head.appendChild(script);
  });
}

async function detectorClass() {
  if ("BarcodeDetector" in window) return window.BarcodeDetector;
  return loadPolyfill();
}

async function startCamera() {
  const Detector = await detectorClass();
  if (!Detector || !navigator.mediaDevices) return;
  const video = document.getElementById("camera");
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  video.srcObject = stream;
  video.hidden = false;
  await video.play();
  const detector = new Detector({ formats: ["qr_code"] });
  const tick = async () => {
    if (submitted) return;
    const codes = await detector.detect(video);
    if (codes.length) {
      input.value = codes[0].rawValue;
      stream.getTracks().forEach((t) => t.stop());
      form.requestSubmit();
      return;
    }
    requestAnimationFrame(tick);
  };
  tick();
}

(async () => {
  const button = document.getElementById("camera-button");
  if (navigator.mediaDevices && (await detectorClass())) {
    button.hidden = false;
    button.addEventListener("click", startCamera);
  }
})();
