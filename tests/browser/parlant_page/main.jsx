// The page tests/browser/test_parlant_widget.py serves: the real parlant-chat-react from npm, unchanged,
// pointed at our Parlant-compatible API.  The host page sets window.parlantConfig
// ({server, agentId, sessionId?}) before this script runs; esbuild bundles it (the test builds it once).
import ParlantChatbox from "parlant-chat-react";
import "parlant-chat-react/style.css";
import { createRoot } from "react-dom/client";

const config = window.parlantConfig;

createRoot(document.getElementById("root")).render(
  <ParlantChatbox
    server={config.server}
    agentId={config.agentId}
    sessionId={config.sessionId || undefined}
    chatDescription="Ask the echo agent anything."
    onSessionCreated={(sessionId) => {
      window.parlantSessionId = sessionId;
    }}
  />,
);
window.parlantMounted = true;
