"""The screen-pop: a small web app where a human agent signs in and sees, live, the context of the
caller the queue is ringing them with (``ari-agent screenpop``; docs/handoff.md)."""
