"""README.zh-CN.md mirrors README.md: the same commands in the same order, the same lessons, the same
command-line options and the same troubleshooting rows. When one of these fails after an edit of
README.md, make the same change in README.zh-CN.md (in Chinese; commands, options and messages as they are)."""
import re

import pytest

from facestyle_utils.runtime import project_root

ROOT = project_root()
#: Fenced blocks in these languages hold commands; other blocks (the file tree) are prose and translated.
COMMAND_LANGUAGES = {"bash", "sh", "shell", "console", "bat", "cmd", "powershell", "ps1"}
#: Each README's troubleshooting heading.
TROUBLESHOOTING = {"README.md": "## Troubleshooting", "README.zh-CN.md": "## 常见问题"}


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def without_comment(line: str) -> str:
    """A shell line without its ``# comment`` (comments are translated); ``#`` must start a word."""
    return re.sub(r"(^|\s)#.*$", "", line).rstrip()


def command_blocks(text: str) -> list[tuple[str, list[str]]]:
    """Every fenced command block as (language, its command lines without comments and blank lines)."""
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)
    return [(language, [kept for line in body.splitlines() if (kept := without_comment(line))])
            for language, body in blocks if language in COMMAND_LANGUAGES]


def lesson_notebooks(text: str) -> list[str]:
    """The notebook column of the lesson table, in order."""
    return re.findall(r"^\| (\d\d) \| `(\w+)` \|", text, re.M)


def options(text: str) -> set[str]:
    """Every ``--option`` named anywhere (commands and prose)."""
    return set(re.findall(r"(?<![\w-])--[a-z][\w-]*", text))


def troubleshooting_rows(name: str) -> list[list[str]]:
    """The code spans of each troubleshooting row (messages, commands, options), row by row."""
    text = read(name)
    section = text[text.index(TROUBLESHOOTING[name]):]
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("|---")][1:]
    return [re.findall(r"`([^`]+)`", row) for row in rows]


@pytest.fixture(scope="module")
def readmes() -> tuple[str, str]:
    return read("README.md"), read("README.zh-CN.md")


def test_the_english_readme_links_to_the_chinese_one_at_the_top(readmes):
    english, chinese = readmes
    assert "(README.zh-CN.md)" in "\n".join(english.splitlines()[:5])
    assert "(README.md)" in "\n".join(chinese.splitlines()[:5])


def test_command_blocks_are_the_same_commands_in_the_same_order(readmes):
    english, chinese = (command_blocks(text) for text in readmes)
    assert len(english) >= 8, "README.md's command blocks were not found"
    assert len(chinese) == len(english), (f"README.md has {len(english)} command blocks, "
                                          f"README.zh-CN.md {len(chinese)}")
    for number, (ours, theirs) in enumerate(zip(english, chinese), start=1):
        assert theirs == ours, f"command block {number} differs between README.md and README.zh-CN.md"


def test_lesson_tables_list_the_same_notebooks(readmes):
    english, chinese = (lesson_notebooks(text) for text in readmes)
    assert [number for number, _ in english] == [f"{n:02d}" for n in range(len(english))] and len(english) >= 8
    assert chinese == english
    assert [name for _, name in english] == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_both_name_the_same_command_line_options(readmes):
    english, chinese = (options(text) for text in readmes)
    assert {"--max-side", "--model", "--no-deps"} <= english
    assert chinese == english, (f"only in README.md: {sorted(english - chinese)}; "
                                f"only in README.zh-CN.md: {sorted(chinese - english)}")


def test_troubleshooting_tables_have_the_same_rows():
    english, chinese = (troubleshooting_rows(name) for name in TROUBLESHOOTING)
    assert len(english) >= 20
    assert len(chinese) == len(english), (f"README.md has {len(english)} troubleshooting rows, "
                                          f"README.zh-CN.md {len(chinese)}")
    for number, (ours, theirs) in enumerate(zip(english, chinese), start=1):
        assert theirs == ours, f"troubleshooting row {number} names other code in README.zh-CN.md"


def test_a_renamed_option_in_one_readme_is_caught(readmes):
    english, chinese = readmes
    renamed = english.replace("--max-side", "--longest-side")
    assert options(renamed) != options(chinese)
    edited = english.replace("make test     #", "make tests    #")
    assert command_blocks(edited) != command_blocks(chinese)
    assert command_blocks(english.replace("# set up if needed", "# 需要时先安装")) == command_blocks(english)
