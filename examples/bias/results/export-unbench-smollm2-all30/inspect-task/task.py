"""inspect_ai task written by `transferscope bias export --format inspect` from items.jsonl.

Run: inspect eval task.py --model openai-api/<service>/<model> (base URL in
<SERVICE>_BASE_URL), or from Python: inspect_ai.eval(task.py's task, model=...).
Generation as `bias run --option-scoring generate`: {'max_tokens': 16, 'temperature': 0.0, 'seed': 0, 'stop': ['\n']}.
"""

from pathlib import Path

from inspect_ai import Task, task

from transferscope.bias.export.inspect_task import items_task


@task
def transferscope_items() -> Task:
    return items_task(Path(__file__).with_name("dataset.jsonl"), {'max_tokens': 16, 'temperature': 0.0, 'seed': 0, 'stop': ['\n']})
