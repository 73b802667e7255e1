/**
 * The chat:* events as Socket.IO event maps, from the generated payload types.
 *
 * `ServerToClientEvents` and `ClientToServerEvents` type a `socket.io-client`
 * socket (`Socket<ServerToClientEvents, ClientToServerEvents>`): every
 * `on`, `emit` and `emitWithAck` is checked against the schema.
 */

import type { AckBodies, ChatError, ClientToServerPayloads, ServerToClientPayloads } from "./events.generated.js";

export * from "./events.generated.js";

export type ServerEventName = keyof ServerToClientPayloads;
export type ClientEventName = keyof ClientToServerPayloads;

/** What a client event's acknowledgement brings: its success, or the error. */
export type AckResult<E extends ClientEventName> = ({ ok: true } & AckBodies[E]) | ({ ok: false } & ChatError);

export type ServerToClientEvents = {
  [E in ServerEventName]: (payload: ServerToClientPayloads[E]) => void;
};

export type ClientToServerEvents = {
  [E in ClientEventName]: (payload: ClientToServerPayloads[E], ack: (result: AckResult<E>) => void) => void;
};
