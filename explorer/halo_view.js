// Side-by-side 3D views of one halo's particles, drawn with WebGL in one canvas.
//
// The payload (deephalo_core/scene.py) holds the positions and labels once and one RGBA array per
// view (alpha = the particle's role). Every view shares one camera: dragging or zooming in any of
// them moves all of them. Drag: rotate; shift-drag or right-drag: pan; wheel: zoom; double-click:
// reset. The root element's data attributes expose the camera and what has been drawn, so tests
// and benchmarks can read them.

const VIEWS = new Map(); // component key -> live view (survives Streamlit reruns)
const TYPES = { float32: Float32Array, int16: Int16Array, uint8: Uint8Array };
const ROLE_PRIMARY = 0, ROLE_FUZZ = 1, ROLE_MEMBER = 2;
const GAP = 6; // pixels between views

const VERTEX = `
attribute vec3 aPos; attribute vec4 aRgba; attribute float aTruth; attribute float aPred;
uniform mat4 uMatrix; uniform float uPass; uniform vec2 uHlBy; uniform float uHlTruth, uHlPred;
uniform float uHlActive, uMemberSize, uPrimarySize, uPrimaryAlpha, uFuzzSize, uFuzzAlpha, uScale;
varying vec4 vColour;
void main() {
  float role = floor(aRgba.a * 255.0 + 0.5);
  bool lit = (uHlBy.x > 0.5 && abs(aTruth - uHlTruth) < 0.5) || (uHlBy.y > 0.5 && abs(aPred - uHlPred) < 0.5);
  float size = uMemberSize; float alpha = 1.0; float front = 1.0;
  if (role < 0.5) { size = uPrimarySize; alpha = uPrimaryAlpha; front = 0.0; }
  else if (role < 1.5) { size = uFuzzSize; alpha = uFuzzAlpha; front = 0.0; }
  if (uHlActive > 0.5) {
    if (lit) { front = 1.0; alpha = 1.0; size = max(uMemberSize, 2.0) * 1.5; }
    else { front = 0.0; alpha = min(alpha, 0.12); size = min(size, uPrimarySize); }
  }
  if (front != uPass || alpha <= 0.0) { gl_Position = vec4(2.0, 2.0, 2.0, 1.0); gl_PointSize = 0.0; return; }
  gl_Position = uMatrix * vec4(aPos, 1.0);
  gl_PointSize = size * uScale;
  vColour = vec4(aRgba.rgb, alpha);
}`;
const FRAGMENT = `
precision mediump float; varying vec4 vColour;
void main() {
  vec2 c = gl_PointCoord - 0.5;
  if (dot(c, c) > 0.25) discard;
  gl_FragColor = vColour;
}`;

// ---- small linear algebra (column-major 4x4 matrices, quaternions [x, y, z, w]) ----
function quat(axis, angle) {
  const s = Math.sin(angle / 2);
  return [axis[0] * s, axis[1] * s, axis[2] * s, Math.cos(angle / 2)];
}
function qmul(a, b) {
  return [a[3] * b[0] + a[0] * b[3] + a[1] * b[2] - a[2] * b[1],
          a[3] * b[1] - a[0] * b[2] + a[1] * b[3] + a[2] * b[0],
          a[3] * b[2] + a[0] * b[1] - a[1] * b[0] + a[2] * b[3],
          a[3] * b[3] - a[0] * b[0] - a[1] * b[1] - a[2] * b[2]];
}
function qnorm(q) { const n = Math.hypot(...q) || 1; return q.map((v) => v / n); }
function qmat(q) { // rotation matrix rows of q
  const [x, y, z, w] = q;
  return [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
          [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
          [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]];
}
function viewProjection(camera, aspect) {
  const r = qmat(camera.q), t = camera.target, d = camera.distance;
  const near = Math.max(d - 4 * camera.radius, d * 0.01), far = d + 4 * camera.radius;
  const f = 1 / Math.tan((camera.fov * Math.PI) / 360);
  const view = new Float32Array(16); // R * translate(-target), then back by d
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) view[j * 4 + i] = r[i][j];
    view[12 + i] = -(r[i][0] * t[0] + r[i][1] * t[1] + r[i][2] * t[2]);
  }
  view[14] -= d; view[15] = 1;
  const p = [f / aspect, f, (far + near) / (near - far), (2 * far * near) / (near - far)];
  const m = new Float32Array(16);
  for (let c = 0; c < 4; c++) {
    const x = view[c * 4], y = view[c * 4 + 1], z = view[c * 4 + 2], w = view[c * 4 + 3];
    m[c * 4] = p[0] * x; m[c * 4 + 1] = p[1] * y; m[c * 4 + 2] = p[2] * z + p[3] * w; m[c * 4 + 3] = -z;
  }
  return m;
}
function initialCamera(radius) {
  // the isometric view PyVista opens with (from +x +y +z, z up), framing the halo
  const q = qmul(quat([1, 0, 0], -Math.atan(Math.SQRT2)), quat([0, 0, 1], (-3 * Math.PI) / 4));
  return { q: qnorm(q), target: [0, 0, 0], distance: 2.6 * radius, radius, fov: 30 };
}

// ---- payload ----
function parse(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const buf = bytes.slice().buffer; // aligned copy: typed views need 4-byte offsets
  const dv = new DataView(buf);
  if (String.fromCharCode(...new Uint8Array(buf, 0, 4)) !== "DHV1") throw new Error("not a halo scene");
  const length = dv.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 8, length)));
  const arrays = {};
  for (const a of header.arrays) {
    const count = a.shape.reduce((x, y) => x * y, 1);
    arrays[a.name] = new TYPES[a.dtype](buf, 8 + length + a.offset, count);
  }
  return { header, arrays };
}

// ---- the view ----
function compile(gl) {
  const program = gl.createProgram();
  for (const [type, source] of [[gl.VERTEX_SHADER, VERTEX], [gl.FRAGMENT_SHADER, FRAGMENT]]) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    gl.attachShader(program, shader);
  }
  gl.linkProgram(program);
  if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
  const where = {};
  const n = gl.getProgramParameter(program, gl.ACTIVE_UNIFORMS);
  for (let i = 0; i < n; i++) { const u = gl.getActiveUniform(program, i); where[u.name] = gl.getUniformLocation(program, u.name); }
  for (const a of ["aPos", "aRgba", "aTruth", "aPred"]) where[a] = gl.getAttribLocation(program, a);
  return { program, where };
}

function createView(parentElement, key) {
  const root = document.createElement("div");
  root.className = "halo-view";
  root.setAttribute("data-testid", "halo-view");
  const canvas = document.createElement("canvas");
  const overlay = document.createElement("div");
  overlay.className = "overlay";
  root.append(canvas, overlay);
  parentElement.appendChild(root);
  const gl = canvas.getContext("webgl", { antialias: false, preserveDrawingBuffer: true, alpha: false });
  const view = { key, root, canvas, overlay, gl, buffers: {}, scene: null, colours: null, header: null,
                 camera: null, frames: 0, pending: false };
  if (!gl) {
    overlay.textContent = "This browser has no WebGL, so the 3D view cannot be drawn.";
    return view;
  }
  view.shader = compile(gl);
  attachControls(view);
  new ResizeObserver(() => redraw(view)).observe(root);
  return view;
}

function upload(gl, buffer, array) {
  gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
  gl.bufferData(gl.ARRAY_BUFFER, array, gl.STATIC_DRAW);
}

function panelAt(view, clientX) {
  const rect = view.canvas.getBoundingClientRect();
  const n = view.header ? view.header.views.length : 1;
  return Math.min(n - 1, Math.max(0, Math.floor(((clientX - rect.left) / rect.width) * n)));
}

function attachControls(view) {
  const canvas = view.canvas;
  let drag = null;
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, pan: e.shiftKey || e.button === 2 };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag || !view.camera) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    drag.x = e.clientX; drag.y = e.clientY;
    const cam = view.camera;
    if (drag.pan) {
      const r = qmat(cam.q), k = (2 * cam.distance * Math.tan((cam.fov * Math.PI) / 360)) / canvas.clientHeight;
      for (let i = 0; i < 3; i++) cam.target[i] += k * (-dx * r[0][i] + dy * r[1][i]);
    } else {
      const k = Math.PI / Math.max(200, canvas.clientHeight);
      cam.q = qnorm(qmul(qmul(quat([0, 1, 0], dx * k), quat([1, 0, 0], dy * k)), cam.q));
    }
    view.lastInput = panelAt(view, e.clientX);
    redraw(view);
  });
  const end = () => { drag = null; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("wheel", (e) => {
    if (!view.camera) return;
    e.preventDefault();
    view.camera.distance *= Math.exp(Math.max(-100, Math.min(100, e.deltaY)) * 0.002);
    view.lastInput = panelAt(view, e.clientX);
    redraw(view);
  }, { passive: false });
  canvas.addEventListener("dblclick", () => {
    if (!view.header) return;
    view.camera = initialCamera(view.header.radius);
    redraw(view);
  });
}

function redraw(view) {
  if (view.pending) return;
  view.pending = true;
  requestAnimationFrame(() => { view.pending = false; draw(view); });
}

function draw(view) {
  const { gl, header, canvas } = view;
  if (!gl || !header) return;
  const dpr = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * dpr)), height = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const { program, where } = view.shader;
  const style = header.style, n = header.views.length, gap = Math.round(GAP * dpr);
  const panelWidth = Math.max(1, Math.floor((width - gap * (n - 1)) / n));
  gl.useProgram(program);
  gl.enable(gl.SCISSOR_TEST);
  gl.clearColor(0.063, 0.075, 0.102, 1);
  gl.viewport(0, 0, width, height); gl.scissor(0, 0, width, height);
  gl.clearColor(0.16, 0.17, 0.2, 1); gl.clear(gl.COLOR_BUFFER_BIT);
  const bind = (name, buffer, size, type, normalized) => {
    if (where[name] < 0) return;
    gl.bindBuffer(gl.ARRAY_BUFFER, buffer);
    gl.enableVertexAttribArray(where[name]);
    gl.vertexAttribPointer(where[name], size, type, normalized, 0, 0);
  };
  bind("aPos", view.buffers.pos, 3, gl.FLOAT, false);
  bind("aTruth", view.buffers.truth, 1, gl.SHORT, false);
  bind("aPred", view.buffers.pred, 1, gl.SHORT, false);
  const matrix = viewProjection(view.camera, panelWidth / height);
  const hl = header.highlight;
  gl.uniformMatrix4fv(where.uMatrix, false, matrix);
  gl.uniform1f(where.uMemberSize, style.member_size);
  gl.uniform1f(where.uPrimarySize, style.primary_size);
  gl.uniform1f(where.uPrimaryAlpha, style.primary_alpha);
  gl.uniform1f(where.uFuzzSize, style.fuzz_size);
  gl.uniform1f(where.uFuzzAlpha, style.fuzz_alpha);
  gl.uniform1f(where.uScale, dpr);
  gl.uniform1f(where.uHlActive, hl ? 1 : 0);
  gl.uniform1f(where.uHlTruth, hl && hl.truth !== null ? hl.truth : -99);
  gl.uniform1f(where.uHlPred, hl && hl.pred !== null ? hl.pred : -99);
  for (let i = 0; i < n; i++) {
    const x = i * (panelWidth + gap);
    gl.viewport(x, 0, panelWidth, height); gl.scissor(x, 0, panelWidth, height);
    gl.clearColor(0.063, 0.075, 0.102, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    bind("aRgba", view.buffers[`rgba${i}`], 4, gl.UNSIGNED_BYTE, true);
    const by = header.views[i].highlight_by;
    gl.uniform2f(where.uHlBy, by.includes("truth") ? 1 : 0, by.includes("pred") ? 1 : 0);
    // back: translucent primary and fuzz, blended, no depth; front: members, opaque, depth-tested
    gl.disable(gl.DEPTH_TEST); gl.depthMask(false); gl.enable(gl.BLEND);
    gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
    gl.uniform1f(where.uPass, 0);
    gl.drawArrays(gl.POINTS, 0, header.n);
    gl.enable(gl.DEPTH_TEST); gl.depthMask(true); gl.disable(gl.BLEND);
    gl.uniform1f(where.uPass, 1);
    gl.drawArrays(gl.POINTS, 0, header.n);
  }
  if (view.firstFrame) { gl.finish(); view.firstFrame = false; } // the drawing time is real, not queued
  view.frames += 1;
  const cam = view.camera;
  Object.assign(view.root.dataset, {
    frames: String(view.frames), drawnScene: header.scene, drawnColours: header.colours,
    views: String(n), receivedAt: String(view.receivedAt), drawnAt: String(Date.now()),
    highlight: hl ? JSON.stringify(hl) : "", lastInput: String(view.lastInput ?? ""),
    camera: JSON.stringify({ q: cam.q, target: cam.target, distance: cam.distance }),
  });
}

function fillOverlay(view) {
  const { overlay, header } = view;
  overlay.replaceChildren();
  const n = header.views.length;
  header.views.forEach((v, i) => {
    const title = document.createElement("div");
    title.className = "title";
    title.style.left = `calc(${(100 * i) / n}% + 8px)`;
    title.textContent = v.title;
    overlay.appendChild(title);
  });
  if (header.colourbar) {
    const bar = document.createElement("div");
    bar.className = "colourbar";
    const ramp = document.createElement("span");
    ramp.className = "ramp";
    ramp.style.background = `linear-gradient(to right, ${header.colourbar.stops.join(", ")})`;
    bar.append(header.colourbar.low, ramp, `${header.colourbar.high}  ${header.colourbar.name}`);
    overlay.appendChild(bar);
  }
  if (header.legend) {
    const legend = document.createElement("div");
    legend.className = "legend";
    for (const item of header.legend) {
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = item.colour;
      const row = document.createElement("div");
      row.append(swatch, item.name);
      legend.appendChild(row);
    }
    overlay.appendChild(legend);
  }
}

function animateTo(view, focus) {
  const cam = view.camera, start = { target: [...cam.target], distance: cam.distance };
  const goal = { target: focus.centre, distance: Math.max(6 * focus.radius, 0.05 * cam.radius) };
  const t0 = performance.now(), ms = 350;
  const step = (now) => {
    const s = Math.min(1, (now - t0) / ms), e = s * (2 - s);
    cam.target = start.target.map((v, i) => v + (goal.target[i] - v) * e);
    cam.distance = start.distance + (goal.distance - start.distance) * e;
    draw(view);
    if (s < 1) requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}

export default function ({ data, key, parentElement }) {
  let view = VIEWS.get(key);
  if (!view || !parentElement.contains(view.root)) {
    view = createView(parentElement, key);
    VIEWS.set(key, view);
  }
  if (!view.gl || !data) return undefined;
  view.receivedAt = Date.now();
  view.firstFrame = true;
  const { header, arrays } = parse(data);
  const { gl } = view;
  view.root.style.height = `${header.height}px`;
  if (header.scene !== view.scene) {
    for (const name of ["pos", "truth", "pred"]) {
      view.buffers[name] = view.buffers[name] || gl.createBuffer();
      upload(gl, view.buffers[name], arrays[name]);
    }
    view.camera = initialCamera(header.radius);
    view.scene = header.scene;
    view.focusKey = null;
    view.colours = null;
  }
  if (header.colours !== view.colours) {
    header.views.forEach((_, i) => {
      view.buffers[`rgba${i}`] = view.buffers[`rgba${i}`] || gl.createBuffer();
      upload(gl, view.buffers[`rgba${i}`], arrays[`rgba${i}`]);
    });
    view.colours = header.colours;
  }
  view.header = header;
  fillOverlay(view);
  const focusKey = header.focus ? JSON.stringify(header.focus) : null;
  if (focusKey !== view.focusKey) {
    view.focusKey = focusKey;
    if (header.focus) animateTo(view, header.focus);
    else if (view.camera) { view.camera.target = [0, 0, 0]; view.camera.distance = 2.6 * header.radius; }
  }
  redraw(view);
  return () => {
    // Streamlit calls this before every update too: let go only once the view left the page
    setTimeout(() => {
      if (!view.root.isConnected && VIEWS.get(key) === view) {
        VIEWS.delete(key);
        const lose = view.gl && view.gl.getExtension("WEBGL_lose_context");
        if (lose) lose.loseContext();
      }
    }, 0);
  };
}
