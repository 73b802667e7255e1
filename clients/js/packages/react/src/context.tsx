/**
 * ChatSocketProvider and useChatSocket: one ChatClient connection per provider,
 * shared by every session shown under it.
 *
 * - No socket during render: the client is made lazily and connects in an
 *   effect, so server rendering (which runs no effects) never opens one.
 * - Strict mode safe: the effect retains the client and its cleanup releases
 *   it; the client closes only a tick after the last release, so React's
 *   mount / unmount / mount in development keeps the one connection.
 */

import { ChatClient } from "@chatserver/client";
import type { ChatClientOptions, ConnectionStatus } from "@chatserver/client";
import { createContext, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore } from "react";
import type { ReactNode } from "react";

export interface ChatUser {
  id: string;
  name?: string;
}

export interface ChatSocketContextValue {
  client: ChatClient;
  user: ChatUser | null;
}

const ChatSocketContext = createContext<ChatSocketContextValue | null>(null);

export interface ChatSocketProviderProps extends Omit<ChatClientOptions, "user"> {
  /** The signed-in user as the application knows them (the seed's `user={user}`). */
  user?: ChatUser | null;
  /** Use this client instead of making one: connected while the provider is mounted (retain it to keep it longer). */
  client?: ChatClient;
  children?: ReactNode;
}

/**
 * Connects to the chat server for everything below it.  The connection's
 * options are read once, when it is made: give the provider a new `key` to
 * connect differently.  `getToken` may change freely (the newest is used).
 */
export function ChatSocketProvider({ user = null, client: given, children, getToken, ...options }: ChatSocketProviderProps) {
  const tokenSource = useRef(getToken);
  useEffect(() => {
    tokenSource.current = getToken;
  });
  const [client] = useState(
    () =>
      given ??
      new ChatClient({
        ...options,
        ...(user ? { user } : {}),
        ...(getToken ? { getToken: (context) => (tokenSource.current ?? getToken)(context) } : {}),
      }),
  );
  useEffect(() => {
    client.retain();
    return () => client.release();
  }, [client]);
  const userId = user?.id;
  const userName = user?.name;
  const value = useMemo(
    () => ({ client, user: userId === undefined ? null : { id: userId, name: userName ?? userId } }),
    [client, userId, userName],
  );
  return <ChatSocketContext.Provider value={value}>{children}</ChatSocketContext.Provider>;
}

export function useChatSocketContext(): ChatSocketContextValue {
  const value = useContext(ChatSocketContext);
  if (value === null) throw new Error("useChatSocket and useChatSession need a <ChatSocketProvider> above them.");
  return value;
}

const NOT_STARTED: ConnectionStatus = { state: "idle" };

export interface ChatSocketState {
  client: ChatClient;
  user: ChatUser | null;
  status: ConnectionStatus;
  connected: boolean;
  /** Skip the reconnection backoff. */
  retryNow: () => void;
}

/** The provider's connection and its state (re-renders when it changes). */
export function useChatSocket(): ChatSocketState {
  const { client, user } = useChatSocketContext();
  const subscribe = useCallback((onChange: () => void) => client.subscribe(onChange), [client]);
  const status = useSyncExternalStore(
    subscribe,
    () => client.status,
    () => NOT_STARTED,
  );
  const retryNow = useCallback(() => client.retryNow(), [client]);
  return { client, user, status, connected: status.state === "connected", retryNow };
}
