"""OpenEQA's LLM-Match: a judge model marks each prediction against the reference answer from 1 to 5.

The judge is any OpenAI-compatible chat-completions server (vLLM, a hosted model). The prompt is ours (not the
OpenEQA authors'): it sends the question, the reference answer and the prediction, and asks for one mark. The
score of a set is the mean of ``100 * (mark - 1) / 4`` (OpenEQA's rule). The API key is read from the environment
variable *named* by ``api_key_env`` and only ever put in the ``Authorization`` header: never printed, logged, or
part of an error message.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import httpx

JUDGE_PROMPT = (
    'You grade answers to questions about a place a robot has seen. Compare the answer given with the reference '
    'answer and give a mark from 1 to 5: 5 means it says the same thing as the reference (other words are fine), '
    '4 mostly the same, 3 partly right, 2 mostly wrong, 1 wrong or no answer. Reply with the mark alone.\n\n'
    'Question: {question}\nReference answer: {reference}\nAnswer given: {prediction}\nMark:'
)
_MARK = re.compile(r'(?<![\d.])([1-5])(?!\d|\.\d)')


class JudgeError(RuntimeError):
    """The judge could not mark one prediction (down, an error status, a reply without a mark)."""


class JudgeSetupError(ValueError):
    """The judge cannot be used at all (no URL or model, an unset key variable)."""


def parse_mark(reply: str) -> int:
    """The mark (1-5) in the judge's reply: the first lone digit 1-5; JudgeError when there is none."""
    found = _MARK.search(reply or '')
    if found is None:
        raise JudgeError(f'the judge replied without a mark from 1 to 5: {reply[:80]!r}')
    return int(found.group(1))


def mark_score(mark: int) -> float:
    """OpenEQA's per-question score of a mark: 0 for 1 ... 100 for 5."""
    return 100.0 * (mark - 1) / 4.0


@dataclass
class Judge:
    """A chat-completions judge at ``base_url`` serving ``model``; ``api_key_env`` names the key's variable."""

    base_url: str
    model: str
    api_key_env: str = ''
    timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if not self.base_url.strip():
            raise JudgeSetupError('--judge-base-url is needed for openeqa (an OpenAI-compatible server, e.g. .../v1)')
        if not self.model.strip():
            raise JudgeSetupError('--judge-model is needed for openeqa (the name the judge server serves)')
        self._headers = {'Content-Type': 'application/json'}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise JudgeSetupError(f'--judge-api-key-env {self.api_key_env}: that environment variable is not set')
            self._headers['Authorization'] = f'Bearer {key}'
        self._client = httpx.Client(timeout=self.timeout_s)

    def mark(self, question: str, reference: str, prediction: str) -> int:
        """The judge's mark for one prediction; JudgeError when the judge fails or replies without one."""
        text = JUDGE_PROMPT.format(question=question, reference=reference, prediction=prediction or '(no answer)')
        body = {
            'model': self.model,
            'messages': [{'role': 'user', 'content': text}],
            'max_tokens': 8,
            'temperature': 0.0,
        }
        url = self.base_url.rstrip('/') + '/chat/completions'
        try:
            response = self._client.post(url, json=body, headers=self._headers)
        except httpx.HTTPError as error:
            raise JudgeError(f'judge at {self.base_url} unreachable: {type(error).__name__}') from None
        if response.status_code != 200:
            raise JudgeError(f'judge at {self.base_url} answered HTTP {response.status_code}')
        try:
            reply = response.json()['choices'][0]['message']['content']
        except (ValueError, KeyError, IndexError, TypeError):
            raise JudgeError(f'judge at {self.base_url} sent no chat completion') from None
        return parse_mark(str(reply))

    def close(self) -> None:
        self._client.close()
