// The slate: a drawing area that is sharp on HiDPI screens, drawn with mouse, touch or pen (pointer events).
// Strokes are kept as point lists in slate coordinates (size x size), so undo is exact and the exported PNG is
// always size x size, dark strokes on white, whatever the screen's pixel ratio.
export default {
  template: `
    <canvas
      ref="canvas"
      :style="{ width: size + 'px', height: size + 'px', touchAction: 'none', cursor: 'crosshair',
                border: '1px solid #9ca3af', borderRadius: '8px', background: '#fff', display: 'block' }"
      @pointerdown="down" @pointermove="move" @pointerup="up" @pointercancel="up" @pointerleave="up"
    ></canvas>`,
  props: {
    size: { type: Number, default: 280 },
    strokeWidth: { type: Number, default: 18 },
  },
  data() {
    return { strokes: [], current: null };
  },
  mounted() {
    this.resize();
    window.addEventListener("resize", this.resize);
  },
  unmounted() {
    window.removeEventListener("resize", this.resize);
  },
  methods: {
    resize() {
      const ratio = window.devicePixelRatio || 1;
      const canvas = this.$refs.canvas;
      const side = Math.round(this.size * ratio);
      if (canvas.width !== side) canvas.width = canvas.height = side; // resizing clears; only when it changes
      this.render(canvas.getContext("2d"), ratio);
    },
    point(event) {
      const box = this.$refs.canvas.getBoundingClientRect();
      return [((event.clientX - box.left) * this.size) / box.width, ((event.clientY - box.top) * this.size) / box.height];
    },
    down(event) {
      if (event.button !== undefined && event.button > 0) return; // only the main button draws
      event.preventDefault();
      this.$refs.canvas.setPointerCapture(event.pointerId);
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
    render(ctx, ratio) {
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, this.size, this.size);
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
      canvas.width = this.size;
      canvas.height = this.size;
      this.render(canvas.getContext("2d"), 1);
      return canvas.toDataURL("image/png");
    },
    changed() {
      this.$emit("change", { png: this.strokes.length ? this.png() : null, strokes: this.strokes.length });
    },
    clear() {
      this.strokes = [];
      this.current = null;
      this.resize();
      this.changed();
    },
    undo() {
      this.strokes.pop();
      this.current = null;
      this.resize();
      this.changed();
    },
  },
};
