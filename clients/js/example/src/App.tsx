/**
 * The seed's example: ChatSocketProvider around a RealTimeChat, against the chat
 * server of `make run`.  Log in as demo/demo or guest/guest; the session and
 * its agent come from the address (?session=…&agent=echo), so two browsers
 * can open the same conversation.
 */

import { ChatSocketProvider, RealTimeChat } from "@chatserver/react";
import { type FormEvent, useState } from "react";

import { csrfToken, logIn, logOut, share, socketToken, whoIsHere } from "./server";

const WORKSPACE = "demo";
const params = new URLSearchParams(window.location.search);

export function App() {
  const [user, setUser] = useState<string | null>(() => sessionStorage.getItem("chat-example-user"));
  if (!user) {
    return (
      <SignIn
        onSignedIn={(name) => {
          sessionStorage.setItem("chat-example-user", name);
          setUser(name);
        }}
      />
    );
  }
  const signOut = () => {
    sessionStorage.removeItem("chat-example-user");
    void logOut().finally(() => setUser(null));
  };
  return <Chat user={{ id: user, name: user }} onSignOut={signOut} />;
}

function SignIn({ onSignedIn }: { onSignedIn: (user: string) => void }) {
  const [error, setError] = useState("");
  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const username = String(form.get("username") ?? "");
    setError("");
    if (await logIn(username, String(form.get("password") ?? ""))) onSignedIn(username);
    else setError("That user name and password did not work.");
  };
  return (
    <main className="example">
      <h1>RealTimeChat example</h1>
      <form className="example__card" onSubmit={submit} aria-describedby="hint">
        <p id="hint">Log in to the chat server as demo / demo or guest / guest.</p>
        <label htmlFor="username">User name</label>
        <input id="username" name="username" autoComplete="username" required />
        <label htmlFor="password">Password</label>
        <input id="password" name="password" type="password" autoComplete="current-password" required />
        {error && <p role="alert">{error}</p>}
        <button type="submit">Log in</button>
      </form>
    </main>
  );
}

function Chat({ user, onSignOut }: { user: { id: string; name: string }; onSignOut: () => void }) {
  const sessionId = params.get("session") ?? `example-${user.id}`;
  const agentId = params.has("agent") ? params.get("agent") || null : "echo";
  const [shared, setShared] = useState("");
  const onShare = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const username = String(new FormData(event.currentTarget).get("share") ?? "");
    setShared(await share(WORKSPACE, sessionId, username));
  };
  return (
    <main className="example">
      <header className="example__bar">
        <h1>RealTimeChat example</h1>
        <p>
          Logged in as <strong data-user>{user.name}</strong>{" "}
          <button type="button" onClick={onSignOut}>
            Log out
          </button>
        </p>
      </header>
      <ChatSocketProvider
        user={user}
        getToken={socketToken}
        fetchPresence={whoIsHere}
        restHeaders={() => ({ "X-CSRFToken": csrfToken() })}
      >
        <RealTimeChat
          sessionId={sessionId}
          agentId={agentId}
          workspaceId={WORKSPACE}
          userId={user.id}
          userName={user.name}
          title={`Conversation ${sessionId}`}
        />
      </ChatSocketProvider>
      <form className="example__share" onSubmit={onShare}>
        <label htmlFor="share">Share this conversation with</label>
        <input id="share" name="share" placeholder="guest" />
        <button type="submit">Share</button>
        <span role="status">{shared}</span>
      </form>
    </main>
  );
}
