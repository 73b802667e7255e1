import "@chatserver/react/styles.css";
import "./example.css";

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { App } from "./App";
import { StrictProbe } from "./StrictProbe";

// Strict mode on: effects mount, unmount and mount again in development, and
// the chat must still open one connection and join each session once.
createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <StrictProbe />
    <App />
  </StrictMode>,
);
