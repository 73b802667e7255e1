/**
 * An agent reply's steps in <RealTimeChat>: its tool calls and reasoning as collapsible
 * <details>, above the reply's text, live while it streams and from a stored reply's
 * `metadata.steps` (`messageSteps` of @chatserver/client folds the events).
 *
 * Everything a step holds (tool names, arguments, results, reasoning) is the agent's raw
 * text: it is rendered as text, never as markup.  <details>/<summary> are keyboard
 * accessible as they are (Tab to the summary, Enter or Space opens and closes it); a
 * step's key is stable while it streams, so an open step stays open as it grows.
 */

import type { AgentStep } from "@chatserver/client";

const STATUS_LABELS: Record<string, string> = { started: "started", running: "running", completed: "done", failed: "failed" };

/** A step's key: the tool call's id, or a reasoning run's position. */
export function stepKey(step: AgentStep, position: number): string {
  return step.type === "tool" ? `tool:${step.toolCallId ?? position}` : `reasoning:${position}`;
}

function Section({ label, value }: { label: string; value: string }) {
  return (
    <div className="rtc-step__section">
      <p className="rtc-step__label">{label}</p>
      <pre className="rtc-step__text">{value}</pre>
    </div>
  );
}

export function Steps({ steps }: { steps: readonly AgentStep[] }) {
  if (!steps.length) return null;
  return (
    <div className="rtc-steps" role="group" aria-label="Steps of this reply">
      {steps.map((step, position) => {
        const key = stepKey(step, position);
        const tool = step.type === "tool";
        const status = String(step.status ?? "");
        return (
          <details
            key={key}
            className={`rtc-step rtc-step--${tool ? "tool" : "reasoning"}`}
            data-step-key={key}
            data-status={tool ? status : undefined}
          >
            <summary className="rtc-step__summary">
              {tool ? (
                <>
                  <span className="rtc-step__kind">Tool</span> <code className="rtc-step__name">{String(step.name ?? "")}</code>{" "}
                  <span className="rtc-step__status" data-status={status}>
                    {STATUS_LABELS[status] ?? status}
                  </span>
                </>
              ) : (
                <span className="rtc-step__kind">Reasoning</span>
              )}
            </summary>
            {tool ? (
              <>
                <Section label="Arguments" value={String(step.arguments || "(none yet)")} />
                {typeof step.result === "string" && <Section label="Result" value={step.result} />}
              </>
            ) : (
              <Section label="Reasoning" value={String(step.text ?? "")} />
            )}
            {step.truncated && <p className="rtc-step__note">Cut at the step limit.</p>}
          </details>
        );
      })}
    </div>
  );
}
