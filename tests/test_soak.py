"""The soak, short: a real `shopbot run` killed with SIGKILL and restarted over a faulty fake Bot API (bench/soak.py)."""

from bench.soak import run_soak


def test_kills_and_telegram_faults_lose_and_reorder_nothing_and_repeat_at_most_one_reply_per_kill(
        tiny_model_dir, tmp_path):
    figures = run_soak(tmp_path, customers=6, messages=4, kills=2, seed=3, model_source=str(tiny_model_dir),
                       max_new_tokens=8, timeout=300)
    print(figures.report())
    assert figures.kills == 2 and figures.messages == 5 * 4
    assert (figures.lost, figures.out_of_order, figures.alerts_lost) == (0, 0, 0)
    assert figures.duplicated <= figures.kills and figures.alerts_duplicated <= figures.kills
    assert figures.alerts >= 1 and figures.integrity == "ok" and figures.forgotten_found == []
