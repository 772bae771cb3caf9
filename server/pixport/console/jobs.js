// The jobs list and the job page: live progress from the NDJSON stream, the image grid, failures, webhooks.

import { ApiError, followJob, request } from "./api.js";
import {
  STATUSES, alertBox, announce, badge, facts, formatDuration, formatNumber, h, link, queue, replace,
  timeElement,
} from "./dom.js";
import { JobModel } from "./model.js";
import { placeholderDataUrl } from "./thumbhash.js";

const PAGE_SIZE = 10; // the most the FULL view allows
const MAX_LIVE_STREAMS = 3; // each stream holds one of the ~6 connections a browser opens per host

function describeError(error) {
  if (error instanceof ApiError && error.status === 403) {
    return `${error.message} (this token cannot read the organisation's jobs: it needs public-api:read)`;
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * The live parts of a job (state, progress bar, counts, rate, connection, Cancel button), built once and then
 * updated in place, so that keyboard focus and screen reader position survive the stream's updates.
 */
class JobStatusView {
  constructor(model) {
    this.model = model;
    this.badge = h("span", {});
    this.percent = h("span", { class: "progress-percent" });
    this.done = h("span", {});
    this.connection = h("span", { class: "live" });
    this.fill = h("div", { class: "progress-fill" });
    this.bar = h("div", {
      class: "progress", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
      "aria-label": `Progress of job ${model.id}`,
    }, this.fill);
    this.countValues = {};
    this.counts = h("ul", { class: "counts", "aria-label": "Images by status" }, STATUSES.map((status) => {
      this.countValues[status] = h("span", { class: "count-value" });
      return h("li", { class: `count count-${status}`, dataset: { status } }, this.countValues[status], ` ${status}`);
    }));
    this.timing = h("p", { class: "timing" });
    this.message = h("div", {});
    this.progress = h("div", { class: "progress-block" },
      h("div", { class: "progress-head" }, this.percent, this.done, this.connection), this.bar, this.counts,
      this.timing, this.message);
    this.cancel = h("button", { type: "button", class: "button-danger", onclick: () => this.cancelJob() },
      "Cancel job");
    this.update();
  }

  async cancelJob() {
    const model = this.model;
    if (!window.confirm(`Cancel job ${model.id}? Images not yet processed will not be imported.`)) return;
    this.cancel.disabled = true;
    try {
      const job = await request(`/api/v1/import/jobs/${encodeURIComponent(model.id)}:cancel`, {
        method: "POST", body: {},
      });
      model.applyJob(job);
      model.emit({ kind: "cancelled" });
      announce(`Job ${model.id} cancelled.`);
    } catch (error) {
      this.cancel.disabled = false;
      model.error = describeError(error);
      model.emit({ kind: "error" });
    }
  }

  update() {
    const model = this.model;
    const percent = model.percent;
    this.badge.className = `badge badge-${model.state}`;
    this.badge.textContent = model.state;
    this.percent.textContent = `${percent}%`;
    this.percent.dataset.percent = String(percent);
    this.done.textContent = `${formatNumber(model.done)} / ${formatNumber(model.counts.total)} images`;
    const connection = { live: "live", reconnecting: "reconnecting…", queued: "waiting for a live slot" }[
      model.connection];
    this.connection.hidden = !connection;
    this.connection.className = `live live-${model.connection}`;
    this.connection.textContent = connection || "";
    this.bar.className = `progress progress-${model.state}`;
    this.bar.setAttribute("aria-valuenow", String(percent));
    this.bar.setAttribute("aria-valuetext", `${percent}% (${model.done} of ${model.counts.total} images)`);
    this.fill.style.width = `${percent}%`;
    for (const status of STATUSES) {
      this.countValues[status].textContent = formatNumber(model.counts[status]);
      this.countValues[status].parentElement.classList.toggle("count-zero", !model.counts[status]);
    }
    const rate = model.rate;
    const timing = [];
    if (rate) timing.push(`${rate >= 10 ? rate.toFixed(0) : rate.toFixed(1)} images/s`);
    if (model.eta !== null && model.eta !== undefined) {
      timing.push(model.eta < 1 ? "almost done" : `about ${formatDuration(model.eta)} left`);
    }
    if (model.finished && model.startedAt && model.finishedAt) {
      timing.push(`took ${formatDuration((Date.parse(model.finishedAt) - Date.parse(model.startedAt)) / 1000)}`);
    }
    this.timing.textContent = timing.join(" · ");
    this.timing.hidden = !timing.length;
    replace(this.message, model.error ? alertBox(model.error) : null);
    this.cancel.hidden = model.finished;
  }
}

/** Streams a job into its model until it is final; the caller aborts `signal` to stop. */
function startStream(model, signal, runStream) {
  model.connection = "queued";
  model.emit({ kind: "connection" });
  return runStream(() => followJob(model.id, {
    signal,
    afterSequence: 0,
    onEvent: (event) => model.applyEvent(event),
    onConnection: (state) => {
      model.connection = state;
      model.emit({ kind: "connection" });
    },
  })).catch((error) => {
    model.connection = "closed";
    model.error = describeError(error);
    model.emit({ kind: "error" });
  });
}

export function jobsPage(params) {
  const controller = new AbortController();
  const runStream = queue(MAX_LIVE_STREAMS);
  const list = h("ol", { class: "jobs", "aria-label": "Import jobs, newest first" });
  const status = h("div", { class: "page-status" });
  const pager = h("nav", { class: "pager", "aria-label": "Pages of jobs" });
  const pageToken = params.get("page") || "";
  let pageController = null;

  const jobRow = (model) => {
    const view = new JobStatusView(model);
    const started = h("span", { class: "muted" }, "started ", timeElement(model.startedAt));
    const row = h("li", { class: "card job", dataset: { jobId: model.id } },
      h("div", { class: "job-head" },
        h("h2", {}, link(`/jobs/${encodeURIComponent(model.id)}`, h("span", { class: "mono" }, model.id))),
        view.badge, started),
      view.progress,
      h("div", { class: "actions" }, link(`/jobs/${encodeURIComponent(model.id)}`, "Images and failures"),
        view.cancel));
    const draw = () => {
      view.update();
      row.dataset.state = model.state;
      row.dataset.sequence = String(model.sequence);
    };
    model.subscribe((_, change) => {
      draw();
      if (change.kind === "finished") announce(`Job ${model.id} finished: ${model.state}.`);
    });
    draw();
    return row;
  };

  const load = async () => {
    pageController?.abort();
    pageController = new AbortController();
    const signal = AbortSignal.any([controller.signal, pageController.signal]);
    replace(status, h("p", { class: "muted" }, "Loading jobs…"));
    try {
      // The BASIC view is enough when the server reports each job's `overview`; older servers do not,
      // and then the FULL view's items give the counts.
      const query = { pageSize: PAGE_SIZE, pageToken, view: "IMPORT_JOB_VIEW_BASIC" };
      let answer = await request("/api/v1/import/jobs", { query, signal });
      if ((answer.importJobs || []).some((job) => !job.overview)) {
        answer = await request("/api/v1/import/jobs", { query: { ...query, view: "IMPORT_JOB_VIEW_FULL" }, signal });
      }
      const jobs = answer.importJobs || [];
      replace(status, jobs.length ? null : h("p", { class: "empty" },
        pageToken ? "No more jobs." : "No import jobs yet. Submit a batch to POST /api/v1/import/images."));
      const models = jobs.map((job) => new JobModel(job));
      replace(list, models.map(jobRow));
      for (const model of models) if (!model.finished) startStream(model, signal, runStream);
      replace(pager,
        pageToken ? h("a", { href: "#/jobs" }, "Newest jobs") : null,
        answer.nextPageToken ? h("a", { href: `#/jobs?page=${encodeURIComponent(answer.nextPageToken)}` },
          "Older jobs") : null);
    } catch (error) {
      if (!signal.aborted) replace(status, alertBox(describeError(error)));
    }
  };

  const jobInput = h("input", {
    id: "job-input", type: "text", name: "job", autocomplete: "off", spellcheck: "false", placeholder: "job id",
  });
  const open = h("form", { class: "inline-form job-open", role: "search" },
    h("label", { for: "job-input", class: "visually-hidden" }, "Open a job by its id"),
    h("div", { class: "row" }, jobInput, h("button", { type: "submit", class: "button-quiet" }, "Open job")));
  open.addEventListener("submit", (event) => {
    event.preventDefault();
    const id = jobInput.value.trim();
    if (id) window.location.hash = `#/jobs/${encodeURIComponent(id)}`;
  });
  const node = h("section", { "aria-labelledby": "page-title" },
    h("div", { class: "page-head" },
      h("h1", { id: "page-title", tabindex: "-1" }, "Import jobs"),
      h("div", { class: "page-tools" }, open,
        h("button", { type: "button", class: "button-quiet", id: "refresh-jobs", onclick: load }, "Refresh"))),
    status, list, pager);
  load();
  return { title: "Import jobs", node, cleanup: () => controller.abort() };
}

/** One tile of the job's image grid: placeholder, then the `mini` thumbnail; failures show their reason. */
function tile(item, loadRecord, whenVisible) {
  const title = item.title || item.externalId;
  const media = h("div", { class: "tile-media" });
  const caption = h("div", { class: "tile-caption" },
    h("span", { class: "tile-title", title }, title),
    badge(item.status),
    item.image?.duplicateOf?.mediaId ? h("span", { class: "tag" }, "near-duplicate") : null,
    item.reason ? h("p", { class: "reason" }, item.reason) : null);
  const element = h("li", { class: `tile tile-${item.status}`, dataset: { externalId: item.externalId, status: item.status } },
    media, caption);
  const mediaId = item.image?.mediaId;
  if (mediaId) {
    const image = h("img", { class: "thumb", alt: title, width: "100", height: "100", decoding: "async" });
    image.addEventListener("load", () => element.classList.add("loaded"), { once: true });
    replace(media, h("a", { href: `#/images/${encodeURIComponent(mediaId)}`, "aria-label": `Image ${title}` }, image));
    whenVisible(element, () => loadRecord(mediaId).then((record) => {
      const placeholder = placeholderDataUrl(record.placeholder);
      if (placeholder) media.style.backgroundImage = `url("${placeholder}")`;
      image.src = record.renditions?.mini || `/api/v1/images/${encodeURIComponent(mediaId)}/mini`;
    }).catch(() => {
      image.src = `/api/v1/images/${encodeURIComponent(mediaId)}/mini`;
    }));
  } else {
    replace(media, h("span", { class: "tile-icon", "aria-hidden": "true" },
      { pending: "…", failed: "!", cancelled: "×" }[item.status] || "?"));
  }
  return element;
}

function deliveriesTable(deliveries, reload) {
  if (!deliveries.length) return h("p", { class: "empty" }, "No webhook deliveries for this job (none asked for, or not finished yet).");
  const stateOf = (delivery) => String(delivery.state || "").replace("STATE_", "").toLowerCase();
  return h("div", { class: "table-wrap" }, h("table", { class: "deliveries" },
    h("caption", { class: "visually-hidden" }, "Webhook deliveries"),
    h("thead", {}, h("tr", {}, ["Delivery", "URL", "State", "Attempts", "Last answer", "Next attempt", ""]
      .map((name) => h("th", { scope: "col" }, name)))),
    h("tbody", {}, deliveries.map((delivery) => [
      h("tr", { dataset: { state: stateOf(delivery) } },
        h("td", { class: "mono" }, delivery.id),
        h("td", { class: "wrap" }, delivery.url),
        h("td", {}, badge(stateOf(delivery))),
        h("td", { class: "attempt-count" }, String(delivery.attemptCount || 0)),
        h("td", {}, delivery.lastStatusCode ? `HTTP ${delivery.lastStatusCode}` : "—",
          delivery.lastError ? h("div", { class: "reason" }, delivery.lastError) : null),
        h("td", {}, timeElement(delivery.nextAttemptTime)),
        h("td", {}, h("button", {
          type: "button", class: "button-quiet",
          onclick: async (event) => {
            event.currentTarget.disabled = true;
            try {
              await request(`/api/v1/webhooks/deliveries/${encodeURIComponent(delivery.id)}:redeliver`,
                { method: "POST", body: {} });
              announce(`Delivery ${delivery.id} queued again.`);
            } catch (error) {
              announce(describeError(error));
            }
            reload();
          },
        }, "Redeliver"))),
      (delivery.attempts || []).length ? h("tr", { class: "attempts-row" }, h("td", { colspan: "7" },
        h("details", {}, h("summary", {}, `${delivery.attempts.length} attempt(s)`),
          h("ol", { class: "attempts" }, delivery.attempts.map((attempt) => h("li", {},
            timeElement(attempt.attemptTime), " — ",
            attempt.statusCode ? `HTTP ${attempt.statusCode}` : "no answer",
            attempt.durationMs ? ` in ${attempt.durationMs} ms` : "",
            attempt.error ? h("span", { class: "reason" }, ` ${attempt.error}`) : null,
            attempt.responseExcerpt ? h("pre", { class: "excerpt" }, attempt.responseExcerpt) : null)))))) : null,
    ]))));
}

export function jobPage(jobId, params) {
  const controller = new AbortController();
  const loadRecord = (() => {
    const limit = queue(3);
    const records = new Map();
    return (mediaId) => {
      if (!records.has(mediaId)) {
        records.set(mediaId, limit(() => request(`/api/v1/images/${encodeURIComponent(mediaId)}`,
          { signal: controller.signal })));
      }
      return records.get(mediaId);
    };
  })();
  // Records (for the placeholder and the mini URL) are fetched only for tiles near the viewport.
  const pending = new WeakMap();
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      observer.unobserve(entry.target);
      pending.get(entry.target)?.();
      pending.delete(entry.target);
    }
  }, { rootMargin: "600px" });
  const whenVisible = (element, load) => {
    pending.set(element, load);
    observer.observe(element);
  };
  let filter = STATUSES.includes(params.get("status")) ? params.get("status") : "all";
  let model = null;
  const summary = h("div", { class: "card" }, h("p", { class: "muted" }, "Connecting to the job's event stream…"));
  const filterBox = h("fieldset", { class: "filter" });
  const grid = h("ul", { class: "grid", "aria-label": "Images of the job" });
  const failures = h("section", { "aria-labelledby": "failures-title", class: "failures" });
  const webhooks = h("div", {});
  const tiles = new Map();

  let view = null;
  const finishedAt = h("span", {});
  const drawSummary = () => {
    if (!view) {
      view = new JobStatusView(model);
      replace(summary,
        h("div", { class: "job-head" }, view.badge, view.cancel),
        facts([["Started", timeElement(model.startedAt)], ["Finished", finishedAt]]),
        view.progress);
    }
    view.update();
    replace(finishedAt, model.finished ? (model.finishedAt ? timeElement(model.finishedAt) : "yes") : "not yet");
  };

  const filterLabels = {};
  const drawFilter = () => {
    if (!filterBox.childElementCount) {
      const options = ["all", ...STATUSES].map((status) => {
        const input = h("input", { type: "radio", name: "status-filter", value: status, id: `filter-${status}` });
        input.checked = status === filter;
        input.addEventListener("change", () => {
          filter = status;
          applyFilter();
          // Keep the choice in the URL for links, without adding history entries or re-rendering.
          const base = window.location.hash.split("?")[0];
          window.history.replaceState(null, "", status === "all" ? base : `${base}?status=${status}`);
        });
        filterLabels[status] = h("label", { for: `filter-${status}` });
        return h("span", { class: "chip" }, input, filterLabels[status]);
      });
      replace(filterBox, h("legend", {}, "Show images"), options);
    }
    for (const [status, label] of Object.entries(filterLabels)) {
      label.textContent = `${status} (${status === "all" ? model.counts.total : model.counts[status]})`;
    }
  };

  const applyFilter = () => {
    for (const element of tiles.values()) element.hidden = filter !== "all" && element.dataset.status !== filter;
  };

  const drawTile = (item) => {
    const fresh = tile(item, loadRecord, whenVisible);
    const old = tiles.get(item.externalId);
    if (old) {
      observer.unobserve(old);
      old.replaceWith(fresh);
    }
    else grid.append(fresh);
    tiles.set(item.externalId, fresh);
  };

  const drawFailures = () => {
    const failed = model.items.filter((item) => item.status === "failed");
    if (!failed.length) {
      replace(failures);
      return;
    }
    replace(failures,
      h("h2", { id: "failures-title" }, `Failed images (${failed.length})`),
      h("div", { class: "table-wrap" }, h("table", {},
        h("thead", {}, h("tr", {}, ["Id", "Title", "Reason"].map((name) => h("th", { scope: "col" }, name)))),
        h("tbody", {}, failed.map((item) => h("tr", { dataset: { externalId: item.externalId } },
          h("td", { class: "mono" }, item.externalId), h("td", {}, item.title || "—"),
          h("td", { class: "reason" }, item.reason || "no reason given")))))));
  };

  const loadDeliveries = async () => {
    try {
      const answer = await request("/api/v1/webhooks/deliveries", {
        query: { jobId }, signal: controller.signal,
      });
      replace(webhooks, deliveriesTable(answer.webhookDeliveries || [], loadDeliveries));
    } catch (error) {
      if (!controller.signal.aborted) replace(webhooks, alertBox(describeError(error)));
    }
  };

  const onChange = (_, change) => {
    drawSummary();
    drawFilter();
    if (change.kind === "snapshot" || change.kind === "cancelled") {
      observer.disconnect();
      grid.replaceChildren();
      tiles.clear();
      model.items.forEach(drawTile);
    } else if (change.kind === "item") {
      const item = model.items.find((candidate) => candidate.externalId === change.item.externalId) || change.item;
      drawTile(item);
    }
    applyFilter();
    if (["snapshot", "item", "cancelled"].includes(change.kind)) drawFailures();
    if (change.kind === "finished") {
      announce(`Job ${jobId} finished: ${model.state}.`);
      loadDeliveries();
    }
  };

  const start = async () => {
    try {
      await followJob(jobId, {
        signal: controller.signal,
        onEvent: (event) => {
          if (!model) {
            model = new JobModel(event.snapshot || { id: jobId });
            model.subscribe(onChange);
          }
          model.applyEvent(event);
        },
        onConnection: (state) => {
          if (!model) return;
          model.connection = state;
          model.emit({ kind: "connection" });
        },
      });
    } catch (error) {
      if (controller.signal.aborted) return;
      if (model) {
        model.error = describeError(error);
        model.emit({ kind: "error" });
      } else {
        replace(summary, alertBox(error instanceof ApiError && error.status === 404
          ? `No job ${jobId} in this organisation.` : describeError(error)));
      }
    }
  };

  const node = h("section", { "aria-labelledby": "page-title" },
    h("p", { class: "crumbs" }, link("/jobs", "← Jobs")),
    h("h1", { id: "page-title", tabindex: "-1" }, "Job ", h("span", { class: "mono" }, jobId)),
    summary,
    h("section", { "aria-labelledby": "images-title" },
      h("h2", { id: "images-title" }, "Images"), filterBox, grid),
    failures,
    h("section", { "aria-labelledby": "webhooks-title" },
      h("div", { class: "page-head" }, h("h2", { id: "webhooks-title" }, "Webhook deliveries"),
        h("button", { type: "button", class: "button-quiet", id: "refresh-deliveries", onclick: loadDeliveries },
          "Refresh")),
      webhooks));
  start();
  loadDeliveries();
  return {
    title: `Job ${jobId}`, node,
    cleanup: () => {
      observer.disconnect();
      controller.abort();
    },
  };
}

