"""Workers turn *Requested events into work (training, evaluation, measurement, distillation).

`dispatch` follows RunRequested events into a Dramatiq broker (`broker`); `actors` run each
delivery as an `attempt` that supervises a training child (`child` → `jobs.train`);
`embedded` runs both in-process on the StubBroker. Only this package imports the ML stack
(torch, transformers, peft, sentence-transformers, openai); it imports `events` only.
"""
