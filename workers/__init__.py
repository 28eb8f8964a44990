"""Workers turn *Requested events into work (training, evaluation, measurement, distillation).

Only this package imports the ML stack (torch, transformers, peft, sentence-transformers,
openai); it imports `events` only. Its dispatcher and actors arrive with the training issue.
"""
