"""The tables behind name normalisation: given names with their Ukrainian and Russian forms,
irregular patronymics, renamed settlements. Data only; `names` builds its lookups from them."""

# One line per name: the Ukrainian form first (it becomes the canonical key), then its Russian
# form and other spellings met in documents.  Spellings that latin_key already folds together
# (Юлія / Юлия / Yuliia / Julia) need not be listed; Latin is listed only where it differs.
MALE_NAMES = """
Олександр Александр Alexander Aleksander Oleksander Alexandr Sasha
Олексій Алексей Alexei Alexey Oleksiy
Анатолій Анатолий
Андрій Андрей Andrew Andrej Andriej
Антон
Аркадій Аркадий
Арсен
Арсеній Арсений
Артем Артём Artyom Artiom
Артур
Богдан
Борис
Вадим
Валентин
Валерій Валерий
Василь Василий Vasyl Vasily Vasilii
Вікторій
Віктор Виктор Victor
Віталій Виталий
Владислав Vladyslav
Володимир Владимир Wolodymyr Volodimir Vladimir
Всеволод
В'ячеслав Вячеслав
Гліб Глеб
Геннадій Геннадий
Юрій Юрий Георгій Георгий Yurii Yuri Yury Iurii Jurij George Heorhii Georgii
Григорій Григорий
Давид Давід David
Данило Даниил Данила Даніїл Даніл Данил Daniel Danylo Danila Daniil
Денис
Дем'ян Демьян
Дмитро Дмитрий Dmitry Dmitri Dmytro Dimitri
Євген Евгений Євгеній Yevhen Evgeny Eugene Yevgeniy
Єгор Егор Yegor Egor
Еміль Эмиль
Захар
Іван Иван Ivan
Ігор Игорь Ihor Igor
Ілля Илья Illia Ilya
Йосип Иосиф Осип Joseph
Кирило Кирилл Kyrylo Kirill Cyril
Костянтин Константин Kostiantyn Konstantin Constantine
Лев
Леонід Леонид
Лука
Макар
Максим Maksym Maxim Maksim
Марко Марк Marko Mark Marc
Матвій Матвей Matvii Matvey
Мирон
Михайло Михаил Mykhailo Mikhail Michael Mychajlo
Микита Никита Нікіта Mykyta Nikita
Микола Николай Mykola Nikolai Nikolay Nicholas
Назар
Олег Oleg Oleh
Остап
Павло Павел Pavlo Pavel Paul
Петро Пётр Петр Petro Pyotr Petr Peter
Платон
Пилип Филипп Філіп Pylyp Filipp Philip
Роман
Ростислав
Руслан
Савелій Савелий Савва Сава
Святослав
Семен Семён Semen Semyon
Сергій Сергей Serhii Sergey Sergei Serhiy
Станіслав Станислав
Степан Stepan Stefan
Тарас
Тимофій Тимофей Tymofii Timofey Timofei
Тимур
Тихон
Федір Фёдор Федор Fedir Fedor Fyodor
Філімон
Ян
Яків Яков Yakiv Yakov Jacob
Ярослав
Еліас
Адам
Айдар
Альберт
Вільям
Віталь
Герман
Едуард Эдуард
Ернест
Іларіон Илларион
Кузьма
Маркіян Маркиян
Мар'ян Марьян
Мирослав
Нестор
Омелян Емельян
Орест
Прохор
Радомир
Родіон Родион
Северин
Устим
Фелікс Феликс
Юліан Юлиан
Юстин
"""

FEMALE_NAMES = """
Аліна Алина
Аліса Алиса
Альбіна Альбина
Альона Алёна Alyona Aliona
Амелія Амелия
Анастасія Анастасия Anastasiia Anastasia
Ангеліна Ангелина
Ганна Анна Hanna Anna Ania Anya Ganna Ann Anne
Антоніна Антонина
Арина Ярина Орина
Богдана
Валентина
Валерія Валерия
Варвара
Василина Василиса
Вероніка Вероника
Віра Вера
Вікторія Виктория Victoria Viktoriia
Віолета Виолетта
Владислава
Галина
Дарія Дарья Дар'я Дарина Daria Dariia Darya Darina Daryna
Діана Диана
Домініка Доминика
Ева Єва Yeva Eva Eve
Євгенія Евгения Yevheniia Evgenia Eugenia
Єлизавета Елизавета Yelyzaveta Elizaveta Elizabeth
Емілія Эмилия Emilia
Злата
Зоряна
Іванна
Ілона
Інна
Ірина Ирина Iryna Irina
Карина
Катерина Екатерина Kateryna Ekaterina Yekaterina Catherine Katerina
Кіра Кира
Ксенія Ксения Kseniia Ksenia Oksenia
Лариса
Лілія Лилия
Любов Любовь
Людмила
Мілана Милана
Марія Мария Maria Mariia Mariya Marija Mary
Маргарита
Марина
Мар'яна Марьяна Mariana Maryana
Марта
Мирослава
Надія Надежда Nadiia Nadezhda
Наталія Наталья Наталия Nataliia Natalia Natalya Natalie
Ніна Нина
Оксана
Олександра Александра Oleksandra Alexandra Aleksandra
Олена Елена Olena Elena Yelena Helen
Олеся Алеся
Ольга Olha Olga
Поліна Полина
Раїса Раиса
Регіна Регина
Світлана Светлана Svitlana Svetlana
Серафима
Соломія Соломия Solomiia Solomiya
Софія София Sofiia Sofia Sophia Sofiya Sonia
Станіслава
Стефанія Стефания
Таїсія Таисия
Тамара
Тетяна Татьяна Tetiana Tatiana Tatyana
Уляна Ульяна Uliana Ulyana
Христина Кристина Khrystyna Kristina Christina
Юлія Юлия Yuliia Yulia Julia
Яна
Ярослава
Майя Maia Maya
Мія Mia
Ніка Ника
Адріана Адриана
Аделіна Аделина
Агата
Аріана Ариана
Віталіна Виталина
Вікторина
Єсенія Есения
Жанна
Зінаїда Зинаида
Зоя
Інеса Инесса
Лідія Лидия
Лія Лия
Неля Нелли
Оля
Розалія
Софійка
Тереза
Фросина
Еліна Элина
Евеліна Эвелина
Ельвіра Эльвира
Емма Эмма
Каміла Камила Kamila Camila
Олівія Оливия Olivia
Аврора
Меланія Мелания Melania
Алла
Аміна Амина
"""

# Irregular patronymics the rules below do not produce.
IRREGULAR_PATRONYMICS = {
    "Павло": "Павлович Павлівна Павловна",
    "Петро": "Петрович Петрівна Петровна",
    "Лев": "Львович Львівна Львовна Левович Левівна",
    "Михайло": "Михайлович Михайлівна Михайловна",
    "Яків": "Якович Яківна Яковлевич Яковлевна",
    "Федір": "Федорович Федорівна Федоровна",
    "Ілля": "Ілліч Іллівна Ильич Ильинична Іллович",
    "Лука": "Лукич Луківна Лукинична",
    "Кузьма": "Кузьмич Кузьмівна Кузьминична",
    "Микола": "Миколайович Миколаївна Николаевич Николаевна",
    "Григорій": "Григорович Григорівна",
    "Юрій": "Георгійович Георгіївна Юрійович Юріївна Юрьевич Юрьевна Георгиевич Георгиевна",
    "Савелій": "Савович Савівна Саввич Саввична",
    "Микита": "Микитович Микитівна Никитич Никитична",
    "Данило": "Данилович Данилівна Даниилович Данииловна",
}

# Diminutives and short forms used as names on lists, each with the full names it stands for (a
# short form can stand for a boy's and a girl's name: Женя for Євген and Євгенія). The full names
# are written as in the tables above; Latin and Russian spellings of the short form fold together.
DIMINUTIVES = """
Саша Сашко Шура: Олександр Олександра
Женя Женька: Євген Євгенія
Валя: Валентин Валентина
Слава Славік: Ярослав В'ячеслав Владислав Мирослав Станіслав Святослав Ярослава Владислава Мирослава Станіслава
Стас: Станіслав
Влад: Владислав
Вова Володя Вовчик: Володимир
Ваня Іванко Івасик: Іван
Діма Дима Дімка: Дмитро
Міша Мишко: Михайло
Коля Колько: Микола
Петя Петрик: Петро
Сергійко Серьожа Сережа Сєрьожа: Сергій
Льоша Альоша Лёша Алёша: Олексій
Костя: Костянтин
Толя Толик: Анатолій
Гриша: Григорій
Паша Павлик: Павло
Рома Ромко: Роман
Тимоша Тима: Тимофій
Вітя Витя: Віктор
Юра Юрко: Юрій
Андрійко Андрюша: Андрій
Богдасик: Богдан
Макс: Максим
Даня Данилко: Данило
Артемко Тьома: Артем
Федя: Федір
Ігорко: Ігор
Катя Катруся: Катерина
Маша Марійка Маруся: Марія
Настя Настуся Ася: Анастасія
Оля Олюся: Ольга
Таня Танюша: Тетяна
Юля Юлька: Юлія
Соня Софійка Софа: Софія
Ліза Лізонька: Єлизавета
Даша Дарка: Дарія
Іра Ира Ірочка: Ірина
Лена Оленка: Олена
Наташа Ната: Наталія
Аня Ганя Ганнуся Анюта: Ганна
Вика Віка: Вікторія
Ксюша: Ксенія Оксана
Поля: Поліна
Надя: Надія
Люба: Любов
Люда: Людмила
Світа Свєта Света: Світлана
Лєра Лера: Валерія
Ліля: Лілія
Уля: Уляна
Христя: Христина
Мілка: Мілана
"""

# Renamed places and Russian names that latin_key alone does not fold onto the Ukrainian one;
# the first name on each line is the key.
SETTLEMENT_NAMES = """
Бахмут|Артемівськ|Артемовск|Артёмовск|Artemivsk|Artemovsk
Олешки|Алешки|Алёшки|Цюрупинськ|Цюрупинск|Oleshky|Aleshki|Alyoshki
Рубіжне|Рубежное|Rubizhne|Rubezhnoe|Rubezhnoye
Сєвєродонецьк|Северодонецк|Sievierodonetsk|Severodonetsk
Старобільськ|Старобельск|Starobilsk|Starobelsk
Дніпро|Днепр|Дніпропетровськ|Днепропетровск|Dnipro|Dnepr|Dnipropetrovsk|Dnepropetrovsk
Кропивницький|Кіровоград|Кировоград|Kropyvnytskyi|Kirovohrad|Kirovograd
Горішні Плавні|Комсомольськ|Комсомольск
Покровськ|Красноармійськ|Красноармейск
Торецьк|Дзержинськ|Дзержинск
Мирноград|Димитров
Кадіївка|Стаханов
Хрустальний|Красний Луч|Красный Луч
Сорокине|Краснодон
Довжанськ|Свердловськ|Свердловск
Горлівка|Горловка|Horlivka|Gorlovka
Макіївка|Макеевка|Makiivka|Makeevka|Makeyevka
Єнакієве|Енакиево|Yenakiieve|Enakievo
Слов'янськ|Славянск|Sloviansk|Slavyansk
Сватове|Сватово|Svatove|Svatovo
Кремінна|Кременная|Kreminna|Kremennaya
Лиман|Красний Лиман|Красный Лиман
Щастя|Счастье|Shchastia|Schastye
Василівка|Васильевка|Vasylivka|Vasilyevka
Кам'янка-Дніпровська|Каменка-Днепровская|Kamianka-Dniprovska|Kamenka-Dneprovskaya
Вільнянськ|Вольнянск
Приморськ|Приморск
Харків|Харьков|Kharkiv|Kharkov
Київ|Киев|Kyiv|Kiev
Запоріжжя|Запорожье|Zaporizhzhia|Zaporozhye
Миколаїв|Николаев|Mykolaiv|Nikolaev
Чернігів|Чернигов|Chernihiv|Chernigov
Львів|Львов|Lviv|Lvov
Новоазовськ|Новоазовск
Первомайськ|Первомайск
"""
