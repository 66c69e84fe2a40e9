"""Stop words for phrase discovery (insights/phrases.py), English and Chinese: function
words, and evaluative words that say how the customer felt but not about what (`terrible`,
`great`, 太差, 很好). A phrase may hold them inside (`waited on hold`) but not start or end
with them. Written for customer comments; extend it here, not per tenant."""

from __future__ import annotations

_ENGLISH = """
a about above after again against all almost also although always am an and any anyone
anything are around as at away back be became because been before being below between
both but by came can cannot could did didn do does doesn doing don done down during each
either else even ever every everything few for from further get gets getting go goes
going gone got had has hasn have haven having he her here hers herself him himself his how
however i if in into is isn it its itself just keep kept know last least less let like
made make makes many may me might more most much must my myself need needs never next no
nobody none nor not nothing now of off often on once one only or other others our ours
ourselves out over own per put quite rather really right said same say says see seem seems
she should since so some someone something sometimes still such take than that the their
theirs them themselves then there these they thing things this those though through thus
till to too took two under until up upon us use used very via was wasn way we well went
were weren what when where whether which while who whom whose why will with within without
won would wouldn yet you your yours yourself yourselves
im ive id ill youre dont cant wont didnt doesnt isnt wasnt arent werent havent hasnt
couldnt shouldnt wouldnt thats theres its
today yesterday time times day days week weeks month months year years minute minutes
hour hours ago always usually
lot lots bit little big much many several whole
good great nice fine ok okay excellent amazing awesome perfect love loved lovely happy
pleased satisfied bad terrible awful horrible poor worst worse better best disappointed
disappointing disappointment annoying annoyed frustrating frustrated unhappy angry upset
totally absolutely completely extremely super pretty so very really highly truly
thanks thank please would recommend definitely experience service overall again
forever ages tried try trying keep keeps kept three four five ten twice wait waiting
"""

_CHINESE = """
的 了 是 在 有 和 就 都 而 及 与 着 或 一个 没有 我们 你们 他们 她们 它们 我 你 他 她 它 这 那
这个 那个 这些 那些 这里 那里 这样 那样 这么 那么 什么 怎么 为什么 哪 哪里 谁 吗 呢 吧 啊 呀
哦 嗯 哈 啦 嘛 么 也 还 又 再 才 就是 只是 但是 但 可是 不过 而且 并且 因为 所以 如果 虽然
然后 还是 或者 以及 已经 一直 一下 一些 一点 一次 一样 有点 有些 每次 每个 其他 其实 可能
可以 能 会 要 想 让 把 被 给 对 从 到 向 跟 比 为 于 以 之 等 等等 中 里 上 下 后 前 时 时候
今天 昨天 现在 之前 之后 以后 以前 时间 真的 真是 真 确实 实在 简直 特别 非常 十分 很 太 挺
蛮 超 超级 最 更 比较 相当 有点儿 好像 感觉 觉得 认为 希望 建议 总是 总之 反正 竟然 居然
好 很好 不错 挺好 满意 喜欢 推荐 棒 很棒 优秀 完美 开心 满意度 差 太差 很差 差劲 垃圾 糟糕
失望 很失望 不满 不满意 生气 郁闷 无语 难受 烦 恶心 坑 服务 体验 整体 总体 下次 还会 一般
好久 半天 半小时 不到 太坑 坑人 一趟
不 没 别 无 非 不是 不会 不能 不要 没法 一 二 两 三 个 次 件 些 种 位 家 块 元 天 月 年 分钟 小时
"""

STOP_WORDS: frozenset[str] = frozenset(_ENGLISH.split()) | frozenset(_CHINESE.split())
