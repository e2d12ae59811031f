"""Which department supervises which industry (seed 000: 鸠江区 work plan, 2025).

Data, not logic: a jurisdiction with another split ships another table. An industry with no
department goes to the market regulator pending designation, as Chaoyang does.
"""

from __future__ import annotations

from typing import Final

PENDING_DEPARTMENT: Final = "区市监局"

INDUSTRY_DEPARTMENTS: Final[dict[str, str]] = {
    # 区市监局
    "汽车4S店": "区市监局", "新能源汽车及电动车充电服务": "区市监局", "停车收费服务": "区市监局",
    "托管机构": "区市监局",
    # 区商务局
    "商贸流通": "区商务局", "餐饮": "区商务局", "美容美发": "区商务局", "非星级酒店": "区商务局",
    "商超": "区商务局", "洗衣店": "区商务局", "家电维修": "区商务局", "家庭服务": "区商务局",
    "二手车": "区商务局", "商业综合体及周边游乐场所": "区商务局",
    # 区委宣传部
    "书店": "区委宣传部", "影院": "区委宣传部",
    # 区教育局
    "学科类培训": "区教育局", "学历提升类培训": "区教育局",
    # 区科技局
    "科技类培训": "区科技局",
    # 区民政局
    "婚介机构": "区民政局", "养老机构": "区民政局",
    # 区人社局
    "民办职业培训": "区人社局",
    # 区住交局
    "机动车维修租赁": "区住交局", "汽车美容": "区住交局", "装饰装修": "区住交局",
    "物业": "区住交局",
    # 区农业农村局
    "宠物医疗": "区农业农村局", "宠物店": "区农业农村局",
    # 区文旅体局
    "文化广播": "区文旅体局", "娱乐场所": "区文旅体局", "体育健身": "区文旅体局",
    "网吧": "区文旅体局", "文化旅游": "区文旅体局", "星级酒店": "区文旅体局",
    "文化艺术类培训": "区文旅体局", "体育类培训": "区文旅体局",
    # 区卫健委
    "托育": "区卫健委", "医疗机构": "区卫健委", "体检机构": "区卫健委", "医美": "区卫健委",
    "母婴保健": "区卫健委", "健康养生": "区卫健委",
}


def department_for(industry: str) -> tuple[str, bool]:
    """The supervising department, and whether it is only pending designation."""
    department = INDUSTRY_DEPARTMENTS.get(industry.strip())
    if department is None:
        return PENDING_DEPARTMENT, True
    return department, False
