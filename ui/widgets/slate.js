// The slate: a drawing area that is sharp on HiDPI screens, drawn with mouse, touch or pen (pointer events), which
// also takes a picture instead (chosen, dropped on it, or pasted).
// Strokes are kept as point lists in slate coordinates (width x height), so undo is exact and the exported PNG is
// always width x height, dark strokes on white, whatever the screen's pixel ratio. A picture is sent to the server as
// the file's own bytes (POST to pictureUrl: a phone photo is far larger than a socket message may be); the server
// turns it upright, shrinks it, and sends back what it will predict, which the slate then shows.
//
// The keyboard: the slate takes focus (Tab) and says what it is; Delete clears it, Ctrl+Z undoes, Ctrl+V pastes a
// picture. Enter anywhere on the page asks for a prediction ("submit"), except on a control that uses Enter itself
// (a field, a button, a link, a switch, an open dialog) -- but never on the clear button, which is marked
// data-enter-predicts: Enter there once cleared the drawing someone had just made.
const USES_ENTER = [
  "input", "textarea", "select", "button", "a[href]", "[contenteditable='']", "[contenteditable='true']",
  "[role=button]", "[role=link]", "[role=checkbox]", "[role=switch]", "[role=radio]", "[role=tab]",
  "[role=option]", "[role=menuitem]", "[role=row][tabindex]", "tr[tabindex]", "[data-uses-enter]", ".q-dialog",
].join(", ");
const TYPING = "input, textarea, select, [contenteditable=''], [contenteditable='true']";

export default {
  template: `
    <div class="slate-area" :class="{ 'slate-dragging': dragging }" :style="{ width: width + 'px', maxWidth: '100%' }"
      @dragenter.prevent="dragging = true" @dragover.prevent="dragging = true" @dragleave="dragLeave"
      @drop.prevent="drop">
      <canvas
        ref="canvas" tabindex="0" role="img" :aria-label="name" :aria-describedby="describedBy"
        :style="{ width: width + 'px', maxWidth: '100%', aspectRatio: width + ' / ' + height, touchAction: 'none',
                  cursor: 'crosshair', border: '1px solid #6b7280', borderRadius: '8px', background: '#fff',
                  display: 'block' }"
        @pointerdown="down" @pointermove="move" @pointerup="up" @pointercancel="up" @pointerleave="up"
        @keydown="key"
      ></canvas>
      <div v-if="sending" class="slate-sending" aria-hidden="true">Reading the picture …</div>
      <input ref="file" type="file" accept="image/png,image/jpeg" class="hidden" tabindex="-1" aria-hidden="true"
        @change="chosen" />
      <input ref="camera" type="file" accept="image/*" capture="environment" class="hidden" tabindex="-1"
        aria-hidden="true" @change="chosen" />
    </div>`,
  props: {
    width: { type: Number, default: 280 },
    height: { type: Number, default: 280 },
    strokeWidth: { type: Number, default: 18 },
    pictureUrl: { type: String, default: "" },
    maxPictureBytes: { type: Number, default: 16 * 1024 * 1024 },
    describedBy: { type: String, default: "" },
  },
  data() {
    return { strokes: [], current: null, picture: null, dragging: false, sending: false };
  },
  computed: {
    name() {
      if (this.picture) return "Drawing slate, showing your picture";
      if (this.strokes.length) return `Drawing slate, with your drawing (${this.strokes.length} strokes)`;
      return "Drawing slate, empty";
    },
  },
  mounted() {
    this.resize();
    window.addEventListener("resize", this.resize);
    document.addEventListener("keydown", this.enter, true); // capture: before a button turns Enter into a click
    document.addEventListener("paste", this.paste);
  },
  unmounted() {
    window.removeEventListener("resize", this.resize);
    document.removeEventListener("keydown", this.enter, true);
    document.removeEventListener("paste", this.paste);
  },
  methods: {
    resize() {
      const ratio = window.devicePixelRatio || 1;
      const canvas = this.$refs.canvas;
      const [w, h] = [Math.round(this.width * ratio), Math.round(this.height * ratio)];
      if (canvas.width !== w || canvas.height !== h) [canvas.width, canvas.height] = [w, h]; // resizing clears
      this.render(canvas.getContext("2d"), ratio);
    },
    point(event) {
      const box = this.$refs.canvas.getBoundingClientRect();
      return [
        ((event.clientX - box.left) * this.width) / box.width,
        ((event.clientY - box.top) * this.height) / box.height,
      ];
    },
    down(event) {
      if (event.button !== undefined && event.button > 0) return; // only the main button draws
      event.preventDefault(); // (no text selection, no scrolling) -- which also keeps focus where it was, so:
      this.$refs.canvas.focus({ preventScroll: true }); // Enter after drawing predicts, whatever was clicked before
      this.$refs.canvas.setPointerCapture(event.pointerId);
      this.picture = null; // a stroke starts a new drawing
      this.current = { width: this.strokeWidth, points: [this.point(event)] };
      this.strokes.push(this.current);
      this.resize();
    },
    move(event) {
      if (!this.current) return;
      event.preventDefault();
      const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
      for (const e of events.length ? events : [event]) this.current.points.push(this.point(e));
      this.resize();
    },
    up() {
      if (!this.current) return;
      this.current = null;
      this.changed();
    },
    key(event) {
      if (event.key === "Delete" || event.key === "Backspace") {
        event.preventDefault();
        this.clear();
      } else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
        event.preventDefault();
        this.undo();
      }
    },
    enter(event) {
      if (event.key !== "Enter" || event.repeat || event.isComposing) return;
      if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
      const target = event.target instanceof Element ? event.target : null;
      if (target && !target.closest("[data-enter-predicts]")) {
        if (target.closest(USES_ENTER) || document.querySelector(".q-dialog")) return;
      }
      event.preventDefault();
      event.stopPropagation();
      this.$emit("submit");
    },
    render(ctx, ratio) {
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, this.width, this.height);
      if (this.picture) {
        const scale = Math.min(this.width / this.picture.width, this.height / this.picture.height);
        const [w, h] = [this.picture.width * scale, this.picture.height * scale];
        ctx.drawImage(this.picture, (this.width - w) / 2, (this.height - h) / 2, w, h);
      }
      ctx.strokeStyle = "#000000";
      ctx.fillStyle = "#000000";
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      for (const stroke of this.strokes) {
        const [first, ...rest] = stroke.points;
        ctx.lineWidth = stroke.width;
        if (!rest.length) {
          ctx.beginPath(); // a tap is a dot
          ctx.arc(first[0], first[1], stroke.width / 2, 0, 2 * Math.PI);
          ctx.fill();
          continue;
        }
        ctx.beginPath();
        ctx.moveTo(first[0], first[1]);
        for (const [x, y] of rest) ctx.lineTo(x, y);
        ctx.stroke();
      }
    },
    png() {
      const canvas = document.createElement("canvas");
      canvas.width = this.width;
      canvas.height = this.height;
      this.render(canvas.getContext("2d"), 1);
      return canvas.toDataURL("image/png");
    },
    changed() {
      this.$emit("change", { png: this.strokes.length ? this.png() : null, strokes: this.strokes.length });
    },
    clear() {
      const from = document.activeElement;
      this.strokes = [];
      this.current = null;
      this.picture = null;
      this.resize();
      this.changed();
      // after the clear button, focus comes to the slate: what follows is drawing (or a picture), then Enter
      if (from && from.closest && from.closest("[data-enter-predicts]")) this.$refs.canvas.focus({ preventScroll: true });
    },
    undo() {
      if (!this.strokes.length && this.picture) this.picture = null;
      this.strokes.pop();
      this.current = null;
      this.resize();
      this.changed();
    },
    // ---- pictures ---------------------------------------------------------------------------------------------
    choose(camera) {
      const input = camera ? this.$refs.camera : this.$refs.file;
      input.value = ""; // the same file chosen twice is still a change
      input.click();
    },
    chosen(event) {
      this.send(event.target.files && event.target.files[0]);
    },
    dragLeave(event) {
      if (!this.$el.contains(event.relatedTarget)) this.dragging = false;
    },
    drop(event) {
      this.dragging = false;
      const files = event.dataTransfer ? [...event.dataTransfer.files] : [];
      this.send(files.find((file) => file.type.startsWith("image/")) || files[0]);
    },
    paste(event) {
      if (event.target instanceof Element && event.target.closest(TYPING)) return; // text pasted into a field
      const items = event.clipboardData ? [...event.clipboardData.items] : [];
      const item = items.find((i) => i.kind === "file" && i.type.startsWith("image/"));
      if (!item) return;
      event.preventDefault();
      this.send(item.getAsFile());
    },
    async send(file) {
      if (!file || this.sending) return;
      if (file.size > this.maxPictureBytes) {
        this.$emit("picture_refused", { reason: "size", size: file.size });
        return;
      }
      this.sending = true;
      try {
        const response = await fetch(this.pictureUrl, {
          method: "POST", body: file, headers: { "Content-Type": "application/octet-stream" },
        });
        if (!response.ok) this.$emit("picture_refused", { reason: "status", status: response.status });
      } catch (error) {
        this.$emit("picture_refused", { reason: "network" });
      } finally {
        this.sending = false;
      }
    },
    showPicture(url) {
      const image = new Image();
      image.onload = () => {
        this.strokes = [];
        this.current = null;
        this.picture = image;
        this.resize();
      };
      image.src = url;
    },
  },
};
