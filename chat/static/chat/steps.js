/**
 * An agent reply's steps -- tool calls and reasoning -- folded from the
 * stream and shown as collapsible <details> above the reply's text.
 *
 * Folding (docs/protocol.md, "Steps"): `chat:agent-tool-call` events of one
 * `toolCallId` make one tool step (arguments joined from `argumentsDelta`,
 * the latest `status`, `result` when known); `chat:agent-reasoning` events
 * grow the last step when it is reasoning, else start one.  A stored reply
 * carries the same list in `metadata.steps`.
 *
 * Everything a step holds (names, arguments, results, reasoning) is the
 * agent's raw text: it goes into text nodes only, never into markup.
 * <details>/<summary> are keyboard accessible as they are: the summary takes
 * focus with Tab and Enter or Space opens and closes it.
 */

const STATUS_LABELS = { started: "started", running: "running", completed: "done", failed: "failed" };

/** `steps` with one tool-call (`kind: "tool"`) or reasoning event applied: a new array. */
export function applyStep(steps, kind, event) {
  const next = [...(steps ?? [])];
  if (kind === "reasoning") {
    const last = next[next.length - 1];
    if (last && last.type === "reasoning") next[next.length - 1] = { ...last, text: `${last.text ?? ""}${event.text ?? ""}` };
    else next.push({ type: "reasoning", text: String(event.text ?? "") });
    return next;
  }
  const at = next.findIndex((step) => step.type === "tool" && step.toolCallId === event.toolCallId);
  const before = at >= 0 ? next[at] : { type: "tool", toolCallId: event.toolCallId, name: event.name, arguments: "" };
  const step = { ...before, arguments: `${before.arguments ?? ""}${event.argumentsDelta ?? ""}`, status: event.status };
  if (typeof event.result === "string") step.result = event.result;
  if (event.truncated) step.truncated = true;
  if (at >= 0) next[at] = step;
  else next.push(step);
  return next;
}

/** The steps to show for a message: as they stream, or as stored. */
export function stepsOf(item) {
  if (item.state === "streaming") return Array.isArray(item.steps) ? item.steps : [];
  const stored = item.metadata?.steps;
  return Array.isArray(stored) ? stored.filter((step) => step && typeof step === "object") : [];
}

/** A step's key, stable while it streams (keeps it open and focused across re-renders). */
export function stepKey(step, position) {
  return step.type === "tool" ? `tool:${step.toolCallId}` : `reasoning:${position}`;
}

function text(doc, tag, className, value) {
  const node = doc.createElement(tag);
  node.className = className;
  node.textContent = String(value ?? "");
  return node;
}

function summaryOf(doc, step) {
  const summary = doc.createElement("summary");
  summary.className = "msg__step-summary";
  if (step.type === "tool") {
    summary.append(text(doc, "span", "msg__step-kind", "Tool"), " ", text(doc, "code", "msg__step-name", step.name));
    const status = STATUS_LABELS[step.status] ?? String(step.status ?? "");
    summary.append(" ", text(doc, "span", `msg__step-status msg__step-status--${step.status}`, status));
  } else {
    summary.append(text(doc, "span", "msg__step-kind", "Reasoning"));
  }
  return summary;
}

function section(doc, label, value) {
  const wrap = doc.createElement("div");
  wrap.className = "msg__step-section";
  wrap.append(text(doc, "p", "msg__step-label", label), text(doc, "pre", "msg__step-text", value));
  return wrap;
}

/**
 * Fill `container` with a <details> per step.
 * @param {HTMLElement} container
 * @param {object[]} steps
 * @param {Set<string>} open keys of the steps to show open
 */
export function renderSteps(container, steps, open = new Set()) {
  const doc = container.ownerDocument;
  container.replaceChildren();
  steps.forEach((step, position) => {
    const details = doc.createElement("details");
    details.className = `msg__step msg__step--${step.type === "tool" ? "tool" : "reasoning"}`;
    details.dataset.stepKey = stepKey(step, position);
    if (step.type === "tool") details.dataset.status = String(step.status ?? "");
    details.open = open.has(details.dataset.stepKey);
    details.append(summaryOf(doc, step));
    if (step.type === "tool") {
      details.append(section(doc, "Arguments", step.arguments || "(none yet)"));
      if (typeof step.result === "string") details.append(section(doc, "Result", step.result));
    } else {
      details.append(section(doc, "Reasoning", step.text));
    }
    if (step.truncated) details.append(text(doc, "p", "msg__step-note", "Cut at the step limit."));
    container.append(details);
  });
}
