// One import job as the console knows it: its items, counts and rate, kept current from the event stream.
//
// Counts come from the job's `overview` when the server sends one, else they are computed from the items
// (older servers send no overview), and an `item_finished` event moves one image from pending to its status.

import { STATUSES } from "./dom.js";

const RATE_WINDOW = 50; // finished images the live rate is measured over

function emptyCounts() {
  return { total: 0, success: 0, skipped: 0, failed: 0, cancelled: 0, pending: 0 };
}

function countsFromOverview(overview) {
  const counts = emptyCounts();
  for (const key of Object.keys(counts)) counts[key] = Number(overview[key] || 0);
  return counts;
}

function countsFromItems(items) {
  const counts = emptyCounts();
  counts.total = items.length;
  for (const item of items) {
    if (item.status in counts) counts[item.status] += 1;
  }
  return counts;
}

export class JobModel {
  constructor(job) {
    this.id = job.id;
    this.items = [];
    this.itemsKnown = false;
    this.counts = emptyCounts();
    this.sequence = 0;
    this.finishTimes = [];
    this.listeners = new Set();
    this.connection = "idle";
    this.applyJob(job);
  }

  /** Calls `listener(model, change)` on every change; returns the unsubscribe function. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change) {
    for (const listener of this.listeners) listener(this, change);
  }

  /** A whole ImportJob (list, get, or the stream's snapshot). */
  applyJob(job) {
    this.state = job.state;
    this.finished = Boolean(job.finished);
    this.startedAt = job.startedAt || this.startedAt || null;
    this.finishedAt = job.finishedAt || this.finishedAt || null;
    if (Array.isArray(job.images) && (job.images.length || !job.overview)) {
      this.items = job.images.map((item, index) => ({ ...item, index }));
      this.itemsKnown = true;
    }
    if (job.overview) this.counts = countsFromOverview(job.overview);
    else if (this.itemsKnown) this.counts = countsFromItems(this.items);
  }

  /** One event of the NDJSON stream (camelCase ImportJobEvent). */
  applyEvent(event) {
    const sequence = Number(event.sequence || 0);
    if (event.snapshot) {
      this.applyJob(event.snapshot);
      this.sequence = sequence;
      this.emit({ kind: "snapshot" });
      return;
    }
    if (sequence && sequence <= this.sequence) return; // already applied
    this.sequence = Math.max(this.sequence, sequence);
    if (event.jobStarted) {
      if (!this.counts.total) this.counts = countsFromOverview(event.jobStarted);
      this.emit({ kind: "started" });
    } else if (event.itemFinished) {
      this.finishItem(event.itemFinished, event.createTime);
    } else if (event.jobFinished) {
      this.state = event.jobFinished.state;
      this.finished = true;
      this.finishedAt = this.finishedAt || event.createTime || null;
      if (event.jobFinished.overview) this.counts = countsFromOverview(event.jobFinished.overview);
      this.emit({ kind: "finished" });
    }
  }

  finishItem(finished, createTime) {
    let item = null;
    if (this.itemsKnown) {
      const index = this.items.findIndex((candidate) => candidate.externalId === finished.externalId);
      if (index >= 0) {
        const previous = this.items[index].status;
        item = { ...this.items[index], ...finished, index };
        this.items[index] = item;
        this.counts = countsFromItems(this.items);
        if (previous !== "pending") item = null;
      }
    }
    if (!this.itemsKnown && finished.status in this.counts) {
      this.counts[finished.status] += 1;
      this.counts.pending = Math.max(0, this.counts.pending - 1);
    }
    if (createTime && finished.status !== "cancelled") {
      this.finishTimes.push(Date.parse(createTime));
      if (this.finishTimes.length > RATE_WINDOW) this.finishTimes.shift();
    }
    this.emit({ kind: "item", item: item || finished });
  }

  get done() {
    return this.counts.total - this.counts.pending;
  }

  get percent() {
    if (this.finished) return 100;
    return this.counts.total ? Math.floor((100 * this.done) / this.counts.total) : 0;
  }

  /** Images fetched and processed (whatever the outcome); cancelled ones were never worked on. */
  get processed() {
    return this.counts.total - this.counts.pending - this.counts.cancelled;
  }

  /** Images a second: over the recent events while running, over the whole job once finished. */
  get rate() {
    if (this.finishTimes.length >= 2 && !this.finished) {
      const span = (this.finishTimes[this.finishTimes.length - 1] - this.finishTimes[0]) / 1000;
      if (span > 0) return (this.finishTimes.length - 1) / span;
    }
    const start = Date.parse(this.startedAt || "");
    const end = this.finished ? Date.parse(this.finishedAt || "") : Date.now();
    if (Number.isFinite(start) && Number.isFinite(end) && end > start && this.processed > 0) {
      return this.processed / ((end - start) / 1000);
    }
    return null;
  }

  /** Seconds left at the current rate, while running. */
  get eta() {
    const rate = this.rate;
    return !this.finished && rate ? this.counts.pending / rate : null;
  }

  countsLine() {
    return STATUSES.filter((status) => status !== "pending" || !this.finished)
      .map((status) => `${this.counts[status]} ${status}`).join(" · ");
  }
}
